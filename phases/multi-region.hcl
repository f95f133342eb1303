phase "multi-region" {
  extends     = "sharding"
  users       = "20000+"
  description = "Global performance and disaster recovery: EU (Falkenstein) and US (Ashburn)"
}

# The seed's global load balancer (GeoDNS / Cloudflare) and CDN are outside Hetzner Cloud: point
# them at the two regional load balancers (outputs LB_IPV4 and LB_US_IPV4).

variable "us_location" {
  description = "The US location: Ashburn, as in the seed"
  default     = "ash"
}

# A private network does not span network zones: the US region has its own.
network "us" {
  ip_range = "10.1.0.0/16"
  subnet {
    network_zone = "us-east"
    ip_range     = "10.1.1.0/24"
  }
}

# In the US, Hetzner still sells the CPX gen-1 types: cpx21 is the seed's own CPX21.
server "app_us" {
  count       = 3
  server_type = "cpx21"
  image       = var.image
  location    = var.us_location
  network     = network.us
  labels      = { role = "app", region = "us" }
}

load_balancer "web_us" {
  type      = "lb11"
  location  = var.us_location
  network   = network.us
  algorithm = "round_robin"

  target {
    server         = server.app_us
    use_private_ip = true
  }

  service {
    protocol         = "http"
    listen_port      = 80
    destination_port = 4000
    health_check {
      protocol = "http"
      port     = 4000
      path     = "/health"
      interval = 10
    }
  }
}

# Writes stay with the shard primaries in the EU; each shard gets a read replica in Ashburn that
# replicates over the public network with TLS, its firewall open to the peers' addresses only.
# cpx31 (4 vCPU, 8 GB) matches the EU primaries' cpx32. The app servers of both regions are its
# clients: the EU ones over the private network, the US ones over the public internet with TLS
# (`hostssl`), admitted by their own addresses in pg_hba.conf, PgBouncer and the firewall.
postgres "shard" {
  count               = 3
  version             = var.postgres_version
  extensions          = ["vector"]
  server_type         = "cpx32"
  location            = var.location
  storage_gb          = 80
  replicas            = 1
  replica_location    = var.us_location
  replica_server_type = "cpx31"
  pgbouncer           = true
  shard_key           = "organization_id"
  network             = network.private
  clients             = [server.app, server.app_us]
  database            = "business_logic_app"
  user                = "business_logic_user"

  backup {
    schedule       = "daily"
    retention_days = 30
    bucket         = bucket.backups
    continuous     = true
    pitr_days      = 7
  }
}

# Redis in each region (the seed's "Redis Cluster" per region: one node each at this size).
redis "cache_us" {
  memory_mb   = 1024
  server_type = "cpx11"
  location    = var.us_location
  network     = network.us
}

output "SHARD_READ_HOSTS_US" {
  value = postgres.shard[*].replica_ipv4s
}

# Where the US app servers write: each shard's primary, over the public internet with TLS
# (sslmode=require), in the order of SHARD_MAP; the URLs carry the shards' passwords.
output "SHARD_WRITE_HOSTS_US" {
  value = postgres.shard[*].primary_ipv4
}

output "SHARD_DATABASE_URLS_US" {
  value     = postgres.shard[*].public_database_url
  sensitive = true
}

# The US app servers' Redis, in their own region.
output "REDIS_US_URL" {
  value     = redis.cache_us.url
  sensitive = true
}

output "LB_US_IPV4" {
  value = load_balancer.web_us.ipv4_address
}
