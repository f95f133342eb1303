# The smallest useful stack: one web server with a firewall and a data volume.
stack "hello" {
  phases = ["start"]
}
