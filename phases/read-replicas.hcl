phase "read-replicas" {
  extends     = "managed-db"
  users       = "1000-5000"
  description = "Improved read performance for RAG queries"
  # The seed estimates €107.70 a month for this phase; pipelines flag a plan over this budget.
  budget_monthly = 120
  remove      = ["output.APP_IPV4"]
}

server "app" {
  count       = 2
  server_type = "cpx22"
  image       = var.image
  location    = var.location
  network     = network.private
  labels      = { role = "app" }
}

# The seed's load balancer: round robin over the app servers, HTTP health check on port 4000.
load_balancer "web" {
  type      = "lb11"
  location  = var.location
  network   = network.private
  algorithm = "round_robin"

  # The load balancer is on the private network: it reaches the app servers there, which the
  # web firewall (22, 80 and 443 only) does not filter. Hetzner's default is their public IPs.
  target {
    server         = server.app
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

# One streaming read replica in the same location (the seed: "replica will be in same data
# center"), and from this phase on continuous WAL archiving with 7 days of point-in-time recovery.
postgres "main" {
  version     = var.postgres_version
  extensions  = ["vector"]
  server_type = "cpx22"
  location    = var.location
  storage_gb  = 40
  replicas    = 1
  pgbouncer   = true
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

redis "cache" {
  memory_mb   = 1024
  server_type = "cpx12"
  location    = var.location
  network     = network.private
}

output "DB_READ_HOST" {
  value = postgres.main.replica_private_ips[0]
}

output "LB_IPV4" {
  value = load_balancer.web.ipv4_address
}

output "APP_IPV4S" {
  value = server.app[*].ipv4_address
}
