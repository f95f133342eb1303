"""Smoke test of the official hcloud Python client against a running emulator.

Run: terrace emulator --listen 127.0.0.1:8080 --action-delay 100 &
     pip install hcloud && HCLOUD_ENDPOINT=http://127.0.0.1:8080/v1 python3 providers/tests/hcloud-python/smoke.py

The load balancer is deleted with a raw request: hcloud-python 2.27 expects an action from
DELETE /load_balancers/{id}, which the OpenAPI description (and so the emulator) answers with 204.
"""
import os, sys
from hcloud import Client
from hcloud.images import Image
from hcloud.server_types import ServerType
from hcloud.locations import Location
from hcloud.networks import NetworkSubnet
from hcloud.firewalls import FirewallRule, FirewallResource
from hcloud.load_balancer_types import LoadBalancerType
from hcloud.load_balancers import LoadBalancerAlgorithm, LoadBalancerService, LoadBalancerTarget, LoadBalancerHealthCheck, LoadBalancerHealthCheckHttp
from hcloud.volumes import Volume

c = Client(token="any", api_endpoint=os.environ["HCLOUD_ENDPOINT"], poll_interval=0.05)
print("locations", [l.name for l in c.locations.get_all()])
print("datacenters", [d.name for d in c.datacenters.get_all()])
print("server types", len(c.server_types.get_all()))
print("lb types", [t.name for t in c.load_balancer_types.get_all()])
print("images", sorted({i.name for i in c.images.get_all(type="system")}))
print("pricing currency", c.request(method="GET", url="/pricing")["pricing"]["currency"])
key = c.ssh_keys.create(name="k", public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIabc me@x", labels={"a": "b"})
net = c.networks.create(name="n", ip_range="10.0.0.0/16", subnets=[NetworkSubnet(type="cloud", ip_range="10.0.1.0/24", network_zone="eu-central")])
fw = c.firewalls.create(name="fw", rules=[FirewallRule(direction="in", protocol="tcp", port="22", source_ips=["0.0.0.0/0"])])
pg = c.placement_groups.create(name="pg", type="spread").placement_group
resp = c.servers.create(name="web-1", server_type=ServerType(name="cx23"), image=Image(name="ubuntu-24.04"),
                        location=Location(name="fsn1"), networks=[net], firewalls=[fw.firewall], placement_group=pg,
                        labels={"role": "web"}, user_data="#cloud-config\n")
resp.action.wait_until_finished()
for a in resp.next_actions:
    a.wait_until_finished()
server = c.servers.get_by_id(resp.server.id)
print("server", server.name, server.status, server.public_net.ipv4.ip, server.private_net[0].ip, "root_password" , bool(resp.root_password))
server.power_off().wait_until_finished()
server.change_type(ServerType(name="cx33"), upgrade_disk=False).wait_until_finished()
server.power_on().wait_until_finished()
server.reboot().wait_until_finished()
server.enable_backup().wait_until_finished()
server.change_protection(delete=True, rebuild=True).wait_until_finished()
server.change_protection(delete=False, rebuild=False).wait_until_finished()
print("servers by label", [s.name for s in c.servers.get_all(label_selector="role=web")])
vol = c.volumes.create(size=10, name="data", location=Location(name="fsn1"), format="ext4")
vol.action.wait_until_finished()
v = c.volumes.get_by_id(vol.volume.id)
v.attach(server, automount=True).wait_until_finished()
v.resize(20).wait_until_finished()
v.detach().wait_until_finished()
lb = c.load_balancers.create(name="lb", load_balancer_type=LoadBalancerType(name="lb11"), location=Location(name="fsn1"), network=net,
    services=[LoadBalancerService(protocol="http", listen_port=80, destination_port=4000, proxyprotocol=False,
        health_check=LoadBalancerHealthCheck(protocol="http", port=4000, interval=10, timeout=5, retries=3,
                                             http=LoadBalancerHealthCheckHttp(path="/health")))],
    targets=[LoadBalancerTarget(type="server", server=server, use_private_ip=True)])
lb.action.wait_until_finished()
lbo = c.load_balancers.get_by_id(lb.load_balancer.id)
lbo.change_algorithm(LoadBalancerAlgorithm(type="least_connections")).wait_until_finished()
print("lb", lbo.name, lbo.public_net.ipv4.ip, [t.type for t in lbo.targets])
fip = c.floating_ips.create(type="ipv4", home_location=Location(name="fsn1"), name="fip")
c.floating_ips.get_by_id(fip.floating_ip.id).assign(server).wait_until_finished()
pip = c.primary_ips.create(type="ipv4", name="pip", location=Location(name="fsn1"))
print("primary ip", pip.primary_ip.ip)
print("keys", [k.name for k in c.ssh_keys.get_all()])
c.request(method="DELETE", url=f"/load_balancers/{lbo.id}"); c.floating_ips.get_by_id(fip.floating_ip.id).unassign().wait_until_finished()
c.servers.get_by_id(server.id).delete().wait_until_finished()
print("after delete", [s.name for s in c.servers.get_all()])
print("OK")
