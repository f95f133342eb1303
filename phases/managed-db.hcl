phase "managed-db" {
  extends     = "block-storage"
  users       = "100-1000"
  description = "Zero-downtime deployments: a database service with PgBouncer, and Redis"
}

# Hetzner Cloud offers no managed PostgreSQL or Redis (the seed's "Hetzner Managed Database" does
# not exist): terrace builds each service from servers, volumes, a firewall and a private network.

network "private" {
  ip_range = "10.0.0.0/16"
  subnet {
    network_zone = "eu-central"
    ip_range     = "10.0.1.0/24"
  }
}

server "app" {
  server_type = "cpx22"
  image       = var.image
  location    = var.location
  network     = network.private
  labels      = { role = "app" }
}

# HTTP, HTTPS and SSH to the app servers; everything else is closed on their public interface.
firewall "web" {
  rule {
    direction  = "in"
    protocol   = "tcp"
    port       = "22"
    source_ips = ["0.0.0.0/0", "::/0"]
  }
  rule {
    direction  = "in"
    protocol   = "tcp"
    port       = "80"
    source_ips = ["0.0.0.0/0", "::/0"]
  }
  rule {
    direction  = "in"
    protocol   = "tcp"
    port       = "443"
    source_ips = ["0.0.0.0/0", "::/0"]
  }
  apply_to {
    label_selector = "role=app"
  }
}

# The seed's "Small (2 vCPU, 4 GB RAM)" managed database: PostgreSQL 16 with pgvector on a cpx22
# of its own, data on a 40 GB volume, PgBouncer in transaction mode on port 6432.
postgres "main" {
  version     = var.postgres_version
  extensions  = ["vector"]
  server_type = "cpx22"
  location    = var.location
  storage_gb  = 40
  pgbouncer   = true
  network     = network.private
  database    = "business_logic_app"
  user        = "business_logic_user"

  backup {
    schedule       = "daily"
    retention_days = 30
    bucket         = bucket.backups
  }
}

# The seed's 256 MB managed Redis: redis-server on the smallest current type that is reliably
# orderable (cpx12: 1 vCPU, 2 GB; the cheaper cx23 has restricted availability since 2026-06).
redis "cache" {
  memory_mb   = 256
  server_type = "cpx12"
  location    = var.location
  network     = network.private
}

output "DB_HOST" {
  value = postgres.main.primary_private_ip
}

output "REDIS_HOST" {
  value = redis.cache.private_ip
}

output "REDIS_URL" {
  value     = redis.cache.url
  sensitive = true
}

# How to bring the database back from its backups: `terrace output RESTORE_PROCEDURE`.
output "RESTORE_PROCEDURE" {
  value = postgres.main.restore_procedure
}
