phase "block-storage" {
  users       = "1-100"
  description = "Production deploy: one server, the database on block storage, daily backups"
}

# The seed's CPX21 (3 vCPU, 4 GB RAM, 80 GB) is no longer sold in the EU: Hetzner deprecated the CPX
# gen-1 types on 2025-10-16. cpx22 (2 vCPU, 4 GB, 80 GB) is its current successor.
server "app" {
  server_type = "cpx22"
  image       = var.image
  location    = var.location
  labels      = { role = "app" }
}

# Hetzner Object Storage (S3 API) for the daily backups: the seed's s3://fastbots-backups.
bucket "backups" {
  name     = "fastbots-backups"
  location = var.location
}

# PostgreSQL 16 with pgvector stays on the app server, as the seed's Docker container does, with
# its data on a 20 GB block storage volume attached to that server, backed up daily at 02:00 UTC to
# Object Storage and kept 30 days. It listens on the server's loopback and on its docker0 bridge
# (172.17.0.1), where the app's containers reach it (Hetzner's docker-ce image: `docker_clients`
# defaults to true), and never on the public address: no firewall is needed to keep it private.
postgres "main" {
  on         = server.app
  version    = var.postgres_version
  extensions = ["vector"]
  storage_gb = 20
  database   = "business_logic_app"
  user       = "business_logic_user"

  backup {
    schedule       = "daily"
    retention_days = 30
    bucket         = bucket.backups
  }
}

output "APP_IPV4" {
  value = server.app.ipv4_address
}

# The address the app's containers reach the database at (the docker0 bridge).
output "DB_HOST" {
  value = postgres.main.host
}

# The connection string for the app's .env (`terrace output --format env --show-sensitive`): it
# holds the generated password, so it is shown only when asked for.
output "DATABASE_URL" {
  value     = postgres.main.database_url
  sensitive = true
}
