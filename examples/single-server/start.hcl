phase "start" {
  description = "One web server with a firewall and a data volume"
}

variable "location" {
  default = "nbg1"
}

ssh_key "admin" {
  public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG3b9r4Zl0ExampleOnlyNotARealKey admin@example"
}

# cx23 is the cheapest type; since 2026-06 Hetzner restricts new servers of it (terrace warns).
server "web" {
  server_type = "cx23"
  image       = "ubuntu-24.04"
  location    = var.location
  ssh_keys    = [ssh_key.admin]
  backups     = true
  labels      = { role = "web" }
}

volume "data" {
  size   = 10
  server = server.web
  format = "ext4"
}

firewall "web" {
  rule {
    direction  = "in"
    protocol   = "tcp"
    port       = "443"
    source_ips = ["0.0.0.0/0", "::/0"]
  }
  apply_to {
    server = server.web
  }
}

output "ip" {
  value = server.web.ipv4_address
}
