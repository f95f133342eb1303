phase "sharding" {
  extends     = "read-replicas"
  users       = "5000-20000"
  description = "Horizontal write scalability: three shards keyed by organization_id"
  remove      = ["postgres.main", "output.DB_HOST", "output.DB_READ_HOST", "output.DATABASE_URL", "output.RESTORE_PROCEDURE"]
}

server "app" {
  count       = 3
  server_type = "cpx22"
  image       = var.image
  location    = var.location
  network     = network.private
  labels      = { role = "app" }
}

# Three independent primaries. The application routes an organization to shard
# parseInt(md5(organization_id)[0:8], 16) % 3, the seed's rule (output SHARD_MAP).
# Each shard gets a larger type (4 vCPU, 8 GB) and 80 GB of storage.
postgres "shard" {
  count       = 3
  version     = var.postgres_version
  extensions  = ["vector"]
  server_type = "cpx32"
  location    = var.location
  storage_gb  = 80
  pgbouncer   = true
  shard_key   = "organization_id"
  network     = network.private
  database    = "business_logic_app"
  user        = "business_logic_user"

  backup {
    schedule       = "daily"
    retention_days = 30
    bucket         = bucket.backups
    continuous     = true
    pitr_days      = 7
  }
}

output "SHARD_HOSTS" {
  value = postgres.shard[*].primary_private_ip
}

output "SHARD_MAP" {
  value = postgres.shard[0].shard_map
}

# Each shard's connection string for the app's .env, in the order of SHARD_MAP (through PgBouncer,
# with the shard's generated password: shown only with --show-sensitive).
output "SHARD_DATABASE_URLS" {
  value     = postgres.shard[*].database_url
  sensitive = true
}
