# The FastBots.ai database scaling strategy (the seed document) as a terrace stack: five phases,
# from one server with block storage to two regions. Each phase is a file named after it; each
# extends the one before and adds, overrides or removes blocks.
stack "fastbots" {
  phases = ["block-storage", "managed-db", "read-replicas", "sharding", "multi-region"]
  backend "local" {
    path = "terrace.state.json"
  }
}

variable "location" {
  description = "The EU location: Falkenstein, as in the seed"
  default     = "fsn1"
}

variable "image" {
  description = "The app servers run the seed's Docker Compose stack"
  default     = "docker-ce"
}

variable "postgres_version" {
  description = "PostgreSQL's major version, from the PostgreSQL project's apt repository"
  default     = 16
}
