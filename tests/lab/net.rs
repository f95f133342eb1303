//! The lab's wiring. The lab namespace ("L", the internet and the CI runner) holds a bridge `internet`
//! (where every host's `eth0` and L's own addresses are) and one bridge per Hetzner network (where the
//! hosts attached to it have an interface, and L has none: private addresses are out of its reach).
//! A host's interfaces are one end of a veth pair whose other end is on a bridge in L.

use std::net::Ipv4Addr;
use std::process::Command;

use super::host::HostProcess;
use super::sys::{quote, try_run};

/// The bridge of the public internet in L.
pub(crate) const INTERNET: &str = "internet";
/// The lab's public range: RFC 2544's benchmarking range, never routed on the internet.
pub(crate) const PUBLIC_RANGE: &str = "198.18.0.0/16";
/// L's own address on the internet bridge, and the Object Storage front's. The emulator hands out
/// addresses from the bottom of the range, these are at its top.
pub(crate) const L_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 255, 1);
pub(crate) const OBJECT_STORAGE: Ipv4Addr = Ipv4Addr::new(198, 18, 255, 2);
/// Docker's default bridge on a docker-ce host, and the address of its one container.
pub(crate) const DOCKER_BRIDGE: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 1);
pub(crate) const CONTAINER: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 2);

fn ip(args: &str) -> Result<String, String> {
    try_run(Command::new("sh").arg("-c").arg(format!("ip {args}")))
}

/// L's loopback and internet: brought up once, in the lab's own network namespace.
pub(crate) fn lab_network() -> Result<(), String> {
    ip("link set lo up")?;
    ip(&format!("link add {INTERNET} type bridge"))?;
    ip(&format!("addr add {L_ADDRESS}/16 dev {INTERNET}"))?;
    ip(&format!("addr add {OBJECT_STORAGE}/32 dev {INTERNET}"))?;
    ip(&format!("link set {INTERNET} up"))?;
    Ok(())
}

/// The bridge in L of a Hetzner network.
pub(crate) fn bridge_name(network: u64) -> String {
    format!("net{network}")
}

pub(crate) fn add_bridge(network: u64) -> Result<(), String> {
    let name = bridge_name(network);
    ip(&format!("link add {name} type bridge"))?;
    ip(&format!("link set {name} up"))?;
    Ok(())
}

pub(crate) fn remove_link(name: &str) {
    let _ = ip(&format!("link del {name}"));
}

/// The name in L of a host's interface: `h<server id>i<slot>`.
pub(crate) fn outside_name(server: u64, slot: usize) -> String {
    format!("h{server}i{slot}")
}

/// A veth pair: `outside` on `bridge` in L, `inside` in the host (with `mac`, if given), both up.
pub(crate) fn plug(
    host: &HostProcess,
    outside: &str,
    inside: &str,
    bridge: &str,
    mac: Option<&str>,
) -> Result<(), String> {
    ip(&format!("link add {outside} type veth peer name {inside} netns {}", host.pid))?;
    ip(&format!("link set {outside} master {bridge} up"))?;
    let mac = mac.map(|m| format!("ip link set {inside} address {}\n", quote(m))).unwrap_or_default();
    host.script(&format!("interface {inside}"), &format!("set -e\n{mac}ip link set {inside} up"))?;
    Ok(())
}

/// The host's public address: `eth0` with it as /32 and the default route on it, as Hetzner's
/// servers have it.
pub(crate) fn set_public(host: &HostProcess, address: Option<Ipv4Addr>) -> Result<(), String> {
    let mut script = String::from("set -e\nip addr flush dev eth0 scope global\nip route flush dev eth0\n");
    if let Some(address) = address {
        script.push_str(&format!("ip addr add {address}/32 dev eth0\nip route add default dev eth0\n"));
    }
    host.script("the public address", &script).map(drop)
}

/// A private interface: its address as /32 and a route to the network's range on it, and nothing
/// else (no route to networks the host is not attached to).
pub(crate) fn set_private(host: &HostProcess, inside: &str, address: Ipv4Addr, range: &str) -> Result<(), String> {
    host.script(
        &format!("the private address on {inside}"),
        &format!("set -e\nip addr add {address}/32 dev {inside}\nip route add {} dev {inside}\n", quote(range)),
    )
    .map(drop)
}

/// The settings every host gets in its own network namespace: ARP answers only for the addresses of
/// the interface asked (else a host would answer for its private address on the public bridge, and
/// hosts outside a network could reach it), and no forwarding.
pub(crate) fn harden(host: &HostProcess) -> Result<(), String> {
    host.script(
        "the network settings",
        "set -e\nip link set lo up\nfor key in all default; do\n  echo 1 > /proc/sys/net/ipv4/conf/$key/arp_ignore\n  \
         echo 2 > /proc/sys/net/ipv4/conf/$key/arp_announce\ndone\necho 0 > /proc/sys/net/ipv4/ip_forward",
    )
    .map(drop)
}

/// docker-ce: the docker0 bridge and one container (a network namespace of its own) behind it.
pub(crate) fn docker(host: &HostProcess) -> Result<(), String> {
    host.script(
        "docker0 and its container",
        &format!(
            "set -e\n\
             ip link add docker0 type bridge\n\
             ip addr add {DOCKER_BRIDGE}/16 dev docker0\n\
             ip link set docker0 up\n\
             ip netns add container\n\
             ip link add vethc0 type veth peer name eth0 netns container\n\
             ip link set vethc0 master docker0 up\n\
             ip -n container link set lo up\n\
             ip -n container addr add {CONTAINER}/16 dev eth0\n\
             ip -n container link set eth0 up\n\
             ip -n container route add default via {DOCKER_BRIDGE}\n"
        ),
    )
    .map(drop)
}
