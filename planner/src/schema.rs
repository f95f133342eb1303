//! The schema of every block kind: attributes with their types, defaults and update semantics, and
//! the nested blocks they accept. It is data: the compiler types values with it, the validator
//! suggests names from it, and the plan reads which attributes are computed or sensitive.

use crate::kind::Kind;
use crate::value::Value;

/// The type an attribute accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    String,
    /// A whole number.
    Int,
    Bool,
    /// One of a fixed set of strings.
    Enum(&'static [&'static str]),
    ListOfString,
    /// A map of string to string (labels).
    Labels,
    /// A reference to one object of one of these kinds.
    Ref(&'static [Kind]),
    /// A reference to one or more objects (a counted block, or a list of references).
    Refs(&'static [Kind]),
    /// A multi-line text (cloud-init, certificates): the plan shows it as a unified diff.
    Text,
}

impl Ty {
    pub fn describe(self) -> String {
        match self {
            Ty::String | Ty::Text => "a string".into(),
            Ty::Int => "a whole number".into(),
            Ty::Bool => "true or false".into(),
            Ty::Enum(options) => format!("one of {}", quoted_list(options)),
            Ty::ListOfString => "a list of strings".into(),
            Ty::Labels => "a map of labels (key = \"value\")".into(),
            Ty::Ref(kinds) => format!("a reference to a {}", kind_list(kinds)),
            Ty::Refs(kinds) => format!("references to {}", kind_list(kinds)),
        }
    }
}

fn quoted_list(options: &[&str]) -> String {
    options.iter().map(|option| format!("\"{option}\"")).collect::<Vec<_>>().join(", ")
}

fn kind_list(kinds: &[Kind]) -> String {
    kinds.iter().map(|kind| kind.as_str()).collect::<Vec<_>>().join(" or ")
}

/// A default applied when the attribute is not written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Default {
    Str(&'static str),
    Int(i64),
    Bool(bool),
}

/// How a change of an attribute (or nested block) reaches Hetzner
/// (../shared/hetzner/RESOURCE-SEMANTICS.md, checked against the API description).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// Hetzner cannot change it: the object is replaced.
    Replace,
    /// Changed in place by these API calls; `power_off` when the server must be off meanwhile.
    InPlace { actions: &'static [&'static str], power_off: bool },
    /// terrace's own setting (a cost estimate, a composite's part): no API call.
    Local,
}

/// One attribute of a block.
#[derive(Debug, Clone, Copy)]
pub struct Attr {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    pub default: Option<Default>,
    pub update: Update,
    /// Never printed.
    pub sensitive: bool,
    /// Runs once, at the object's first boot (cloud-init): dropping it from the definition changes
    /// nothing on the object, so it is kept, not a reason to replace.
    pub first_boot: bool,
    /// A whole number's domain, both ends included: checked where the value is written, before
    /// anything is expanded from it, and shown in the reference.
    pub range: Option<(i64, i64)>,
}

impl Attr {
    /// Its type in words, with a whole number's domain.
    pub fn describe(&self) -> String {
        match self.range {
            Some((min, max)) => format!("{} from {min} to {max}", self.ty.describe()),
            None => self.ty.describe(),
        }
    }

    /// Whether `value` is outside its domain (a known number; anything else is for the type check).
    pub fn out_of_range(&self, value: &crate::value::Value) -> bool {
        let value = match value {
            crate::value::Value::Sensitive(inner) => inner,
            other => other,
        };
        let (Some((min, max)), Some(n)) = (self.range, value.as_f64()) else { return false };
        n < min as f64 || n > max as f64
    }

    /// Changing it replaces the object.
    pub fn forces_replacement(&self) -> bool {
        self.update == Update::Replace
    }
}

/// A nested block (`subnet`, `service`, `health_check`).
#[derive(Debug, Clone, Copy)]
pub struct Nested {
    pub name: &'static str,
    pub schema: &'static BlockSchema,
    /// May appear more than once; its values become a list.
    pub repeated: bool,
    pub required: bool,
    /// How a change of these blocks reaches Hetzner.
    pub update: Update,
}

/// The attributes and nested blocks of one block type, and the attributes the API computes.
#[derive(Debug)]
pub struct BlockSchema {
    pub attrs: &'static [Attr],
    pub blocks: &'static [Nested],
    /// Attributes only the API knows (ids, addresses), readable in references.
    pub computed: &'static [&'static str],
}

impl BlockSchema {
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|attr| attr.name == name)
    }

    pub fn block(&self, name: &str) -> Option<&Nested> {
        self.blocks.iter().find(|block| block.name == name)
    }

    /// Every name that may be written in this block (attributes, then blocks).
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.attrs.iter().map(|attr| attr.name).chain(self.blocks.iter().map(|block| block.name))
    }

    /// How a change of the attribute or nested block `name` reaches Hetzner.
    pub fn update_of(&self, name: &str) -> Option<Update> {
        self.attr(name).map(|a| a.update).or_else(|| self.block(name).map(|b| b.update))
    }
}

/// The update of `name` and `labels`, and of other plain settings: `PUT /<kind>s/{id}`.
const PUT: Update = Update::InPlace { actions: &["update (PUT)"], power_off: false };

const fn attr(name: &'static str, ty: Ty) -> Attr {
    Attr { name, ty, required: false, default: None, update: PUT, sensitive: false, first_boot: false, range: None }
}

const fn required(name: &'static str, ty: Ty) -> Attr {
    Attr { required: true, ..attr(name, ty) }
}

/// A whole number from `min` to `max`.
const fn within(mut a: Attr, min: i64, max: i64) -> Attr {
    a.range = Some((min, max));
    a
}

const fn replacing(mut a: Attr) -> Attr {
    a.update = Update::Replace;
    a
}

const fn by(mut a: Attr, actions: &'static [&'static str]) -> Attr {
    a.update = Update::InPlace { actions, power_off: false };
    a
}

/// Changed in place, with the server powered off meanwhile.
const fn powered_off(mut a: Attr, actions: &'static [&'static str]) -> Attr {
    a.update = Update::InPlace { actions, power_off: true };
    a
}

const fn first_boot(mut a: Attr) -> Attr {
    a.first_boot = true;
    a
}

const fn local(mut a: Attr) -> Attr {
    a.update = Update::Local;
    a
}

const fn with_default(mut a: Attr, default: Default) -> Attr {
    a.default = Some(default);
    a
}

const fn secret(mut a: Attr) -> Attr {
    a.sensitive = true;
    a
}

const fn nested(name: &'static str, schema: &'static BlockSchema, repeated: bool, update: Update) -> Nested {
    Nested { name, schema, repeated, required: false, update }
}

const fn actions(actions: &'static [&'static str]) -> Update {
    Update::InPlace { actions, power_off: false }
}

const NAME: Attr = attr("name", Ty::String);
const LABELS: Attr = attr("labels", Ty::Labels);
const DELETE_PROTECTION: Attr =
    with_default(by(attr("delete_protection", Ty::Bool), &["change_protection"]), Default::Bool(false));
const IP_TYPE: Ty = Ty::Enum(&["ipv4", "ipv6"]);

/// Attributes every block accepts, whatever its kind (Terraform's meta-arguments).
/// `count`'s domain is also `compile::block::MAX_COUNT`, which evaluates it before the block.
pub const META_ATTRS: &[Attr] =
    &[local(within(attr("count", Ty::Int), 0, 10_000)), local(attr("depends_on", Ty::Refs(&Kind::ALL)))];

pub const LIFECYCLE: BlockSchema = BlockSchema {
    attrs: &[
        local(with_default(attr("prevent_destroy", Ty::Bool), Default::Bool(false))),
        local(with_default(attr("create_before_destroy", Ty::Bool), Default::Bool(false))),
        local(attr("ignore_changes", Ty::ListOfString)),
    ],
    blocks: &[],
    computed: &[],
};

const PUBLIC_NET: BlockSchema = BlockSchema {
    attrs: &[
        with_default(attr("ipv4_enabled", Ty::Bool), Default::Bool(true)),
        with_default(attr("ipv6_enabled", Ty::Bool), Default::Bool(true)),
        attr("ipv4", Ty::Ref(&[Kind::PrimaryIp])),
        attr("ipv6", Ty::Ref(&[Kind::PrimaryIp])),
    ],
    blocks: &[],
    computed: &[],
};

const SERVER: BlockSchema = BlockSchema {
    attrs: &[
        NAME,
        powered_off(required("server_type", Ty::String), &["poweroff", "change_type", "poweron"]),
        replacing(with_default(attr("image", Ty::String), Default::Str("ubuntu-24.04"))),
        replacing(required("location", Ty::String)),
        LABELS,
        first_boot(replacing(attr("user_data", Ty::Text))),
        replacing(attr("ssh_keys", Ty::Refs(&[Kind::SshKey]))),
        by(attr("network", Ty::Ref(&[Kind::Network])), &["detach_from_network", "attach_to_network"]),
        by(attr("private_ip", Ty::String), &["detach_from_network", "attach_to_network"]),
        by(
            attr("firewalls", Ty::Refs(&[Kind::Firewall])),
            &["firewall remove_from_resources", "firewall apply_to_resources"],
        ),
        powered_off(
            attr("placement_group", Ty::Ref(&[Kind::PlacementGroup])),
            &["poweroff", "remove_from_placement_group", "add_to_placement_group", "poweron"],
        ),
        with_default(by(attr("backups", Ty::Bool), &["enable_backup / disable_backup"]), Default::Bool(false)),
        DELETE_PROTECTION,
        with_default(by(attr("rebuild_protection", Ty::Bool), &["change_protection"]), Default::Bool(false)),
    ],
    blocks: &[nested(
        "public_net",
        &PUBLIC_NET,
        false,
        Update::InPlace { actions: &["poweroff", "primary_ip unassign / assign", "poweron"], power_off: true },
    )],
    computed: &["id", "ipv4_address", "ipv6_address", "ipv6_network", "private_ip", "status"],
};

const VOLUME: BlockSchema = BlockSchema {
    attrs: &[
        NAME,
        within(by(required("size", Ty::Int), &["resize"]), 10, 10_240),
        replacing(attr("location", Ty::String)),
        by(attr("server", Ty::Ref(&[Kind::Server])), &["detach", "attach"]),
        with_default(by(attr("automount", Ty::Bool), &["detach", "attach"]), Default::Bool(false)),
        replacing(attr("format", Ty::Enum(&["ext4", "xfs"]))),
        LABELS,
        DELETE_PROTECTION,
    ],
    blocks: &[],
    computed: &["id", "linux_device"],
};

const SUBNET: BlockSchema = BlockSchema {
    attrs: &[
        with_default(attr("type", Ty::Enum(&["cloud", "server", "vswitch"])), Default::Str("cloud")),
        required("network_zone", Ty::String),
        required("ip_range", Ty::String),
        within(attr("vswitch_id", Ty::Int), 1, 9_007_199_254_740_991),
    ],
    blocks: &[],
    computed: &["gateway"],
};

const ROUTE: BlockSchema = BlockSchema {
    attrs: &[required("destination", Ty::String), required("gateway", Ty::String)],
    blocks: &[],
    computed: &[],
};

const NETWORK: BlockSchema = BlockSchema {
    attrs: &[
        NAME,
        // Hetzner can only extend a network's range (`change_ip_range`); the diff replaces the
        // network when the new range does not contain the old one.
        by(required("ip_range", Ty::String), &["change_ip_range"]),
        LABELS,
        with_default(attr("expose_routes_to_vswitch", Ty::Bool), Default::Bool(false)),
        DELETE_PROTECTION,
    ],
    blocks: &[
        nested("subnet", &SUBNET, true, actions(&["delete_subnet", "add_subnet"])),
        nested("route", &ROUTE, true, actions(&["delete_route", "add_route"])),
    ],
    computed: &["id"],
};

const HEALTH_CHECK: BlockSchema = BlockSchema {
    attrs: &[
        required("protocol", Ty::Enum(&["tcp", "http", "https"])),
        within(required("port", Ty::Int), 1, 65_535),
        within(with_default(attr("interval", Ty::Int), Default::Int(15)), 1, 3_600),
        within(with_default(attr("timeout", Ty::Int), Default::Int(10)), 1, 3_600),
        within(with_default(attr("retries", Ty::Int), Default::Int(3)), 0, 10),
        attr("path", Ty::String),
        attr("domain", Ty::String),
        attr("response", Ty::String),
        attr("status_codes", Ty::ListOfString),
        with_default(attr("tls", Ty::Bool), Default::Bool(false)),
    ],
    blocks: &[],
    computed: &[],
};

const SERVICE: BlockSchema = BlockSchema {
    attrs: &[
        required("protocol", Ty::Enum(&["tcp", "http", "https"])),
        within(attr("listen_port", Ty::Int), 1, 65_535),
        within(attr("destination_port", Ty::Int), 1, 65_535),
        with_default(attr("proxyprotocol", Ty::Bool), Default::Bool(false)),
        attr("certificates", Ty::Refs(&[Kind::Certificate])),
        with_default(attr("sticky_sessions", Ty::Bool), Default::Bool(false)),
        with_default(attr("redirect_http", Ty::Bool), Default::Bool(false)),
    ],
    blocks: &[nested("health_check", &HEALTH_CHECK, false, actions(&["update_service"]))],
    computed: &[],
};

const TARGET: BlockSchema = BlockSchema {
    attrs: &[
        attr("server", Ty::Refs(&[Kind::Server])),
        attr("label_selector", Ty::String),
        attr("ip", Ty::String),
        attr("use_private_ip", Ty::Bool),
    ],
    blocks: &[],
    computed: &[],
};

const LOAD_BALANCER: BlockSchema = BlockSchema {
    attrs: &[
        NAME,
        by(required("type", Ty::String), &["change_type"]),
        replacing(attr("location", Ty::String)),
        replacing(attr("network_zone", Ty::String)),
        by(attr("network", Ty::Ref(&[Kind::Network])), &["detach_from_network", "attach_to_network"]),
        with_default(
            by(attr("algorithm", Ty::Enum(&["round_robin", "least_connections"])), &["change_algorithm"]),
            Default::Str("round_robin"),
        ),
        with_default(
            by(attr("public_interface", Ty::Bool), &["enable_public_interface / disable_public_interface"]),
            Default::Bool(true),
        ),
        LABELS,
        DELETE_PROTECTION,
    ],
    blocks: &[
        // A service is keyed by its listen port: a new port is delete_service + add_service.
        nested("service", &SERVICE, true, actions(&["add_service / update_service / delete_service"])),
        nested("target", &TARGET, true, actions(&["remove_target", "add_target"])),
    ],
    computed: &["id", "ipv4_address", "ipv6_address", "private_ip"],
};

const RULE: BlockSchema = BlockSchema {
    attrs: &[
        required("direction", Ty::Enum(&["in", "out"])),
        required("protocol", Ty::Enum(&["tcp", "udp", "icmp", "esp", "gre"])),
        attr("port", Ty::String),
        attr("source_ips", Ty::ListOfString),
        attr("destination_ips", Ty::ListOfString),
        attr("description", Ty::String),
    ],
    blocks: &[],
    computed: &[],
};

const APPLY_TO: BlockSchema = BlockSchema {
    attrs: &[attr("server", Ty::Refs(&[Kind::Server])), attr("label_selector", Ty::String)],
    blocks: &[],
    computed: &[],
};

const FIREWALL: BlockSchema = BlockSchema {
    attrs: &[NAME, LABELS],
    blocks: &[
        nested("rule", &RULE, true, actions(&["set_rules"])),
        nested("apply_to", &APPLY_TO, true, actions(&["remove_from_resources", "apply_to_resources"])),
    ],
    computed: &["id"],
};

const PLACEMENT_GROUP: BlockSchema = BlockSchema {
    attrs: &[NAME, replacing(with_default(attr("type", Ty::Enum(&["spread"])), Default::Str("spread"))), LABELS],
    blocks: &[],
    computed: &["id"],
};

const PRIMARY_IP: BlockSchema = BlockSchema {
    attrs: &[
        NAME,
        replacing(required("type", IP_TYPE)),
        replacing(required("location", Ty::String)),
        powered_off(attr("assignee", Ty::Ref(&[Kind::Server])), &["poweroff", "unassign", "assign", "poweron"]),
        with_default(attr("auto_delete", Ty::Bool), Default::Bool(false)),
        LABELS,
        DELETE_PROTECTION,
    ],
    blocks: &[],
    computed: &["id", "ip_address"],
};

const FLOATING_IP: BlockSchema = BlockSchema {
    attrs: &[
        NAME,
        replacing(required("type", IP_TYPE)),
        replacing(required("home_location", Ty::String)),
        by(attr("server", Ty::Ref(&[Kind::Server])), &["unassign", "assign"]),
        attr("description", Ty::String),
        LABELS,
        DELETE_PROTECTION,
    ],
    blocks: &[],
    computed: &["id", "ip_address"],
};

const SSH_KEY: BlockSchema = BlockSchema {
    attrs: &[NAME, replacing(required("public_key", Ty::String)), LABELS],
    blocks: &[],
    computed: &["id", "fingerprint"],
};

const CERTIFICATE: BlockSchema = BlockSchema {
    attrs: &[
        NAME,
        replacing(with_default(attr("type", Ty::Enum(&["uploaded", "managed"])), Default::Str("uploaded"))),
        replacing(attr("certificate", Ty::Text)),
        replacing(secret(attr("private_key", Ty::Text))),
        replacing(attr("domain_names", Ty::ListOfString)),
        LABELS,
    ],
    blocks: &[],
    computed: &["id", "fingerprint", "not_valid_after"],
};

const BUCKET: BlockSchema = BlockSchema {
    attrs: &[
        // Bucket names are global and fixed at creation (S3 API).
        replacing(NAME),
        replacing(required("location", Ty::String)),
        local(within(attr("storage_gb", Ty::Int), 0, 1_000_000)),
        // Set by terrace from the databases that back up into the bucket, unless written.
        local(within(attr("backups_gb", Ty::Int), 0, 1_000_000)),
    ],
    blocks: &[],
    // The S3 credentials terrace made the bucket with, recorded (as secrets) for the backups of the
    // databases that write to it.
    computed: &["endpoint", "access_key", "secret_key"],
};

const BACKUP: BlockSchema = BlockSchema {
    attrs: &[
        local(with_default(attr("schedule", Ty::Enum(&["daily", "hourly"])), Default::Str("daily"))),
        local(within(with_default(attr("retention_days", Ty::Int), Default::Int(30)), 1, 3_650)),
        local(attr("bucket", Ty::Ref(&[Kind::Bucket]))),
        local(with_default(attr("continuous", Ty::Bool), Default::Bool(false))),
        local(within(with_default(attr("pitr_days", Ty::Int), Default::Int(7)), 1, 3_650)),
    ],
    blocks: &[],
    computed: &[],
};

/// A secret is made by terrace at apply and kept in state: changing how it is made makes a new one.
const SECRET: BlockSchema = BlockSchema {
    attrs: &[
        replacing(within(with_default(attr("length", Ty::Int), Default::Int(32)), 16, 1_024)),
        replacing(with_default(attr("special", Ty::Bool), Default::Bool(false))),
    ],
    blocks: &[],
    computed: &["value"],
};

/// An SSH key pair made by terrace at apply and kept in state (the private key as a secret): a
/// server's host key, handed to it at first boot and pinned, or terrace's login key of a service.
const KEYPAIR: BlockSchema = BlockSchema {
    attrs: &[replacing(with_default(attr("algorithm", Ty::Enum(&["ed25519"])), Default::Str("ed25519")))],
    blocks: &[],
    computed: &["private_key", "public_key"],
};

/// One file terrace keeps on a host: its whole content, mode and owner.
const HOST_FILE: BlockSchema = BlockSchema {
    attrs: &[
        local(required("path", Ty::String)),
        local(required("content", Ty::Text)),
        local(required("mode", Ty::String)),
        local(required("owner", Ty::String)),
    ],
    blocks: &[],
    computed: &["sha256"],
};

/// What terrace keeps on a service's server over SSH: made by the composites. A change of the
/// files is converged in place (written, then reloaded or restarted as the file needs); the diff
/// and the executor treat it apart from the API's attributes (`services::converge`).
const HOST: BlockSchema = BlockSchema {
    attrs: &[
        // Another server is another host: its configuration comes with its first boot.
        replacing(required("server", Ty::Ref(&[Kind::Server]))),
        local(attr("address", Ty::String)),
        local(attr("host_key", Ty::String)),
        local(secret(attr("login_key", Ty::Text))),
        local(required("service", Ty::Enum(&["postgres", "redis"]))),
        local(attr("role", Ty::String)),
        local(attr("version", Ty::Int)),
        local(attr("packages", Ty::ListOfString)),
    ],
    blocks: &[nested("file", &HOST_FILE, true, Update::Local)],
    computed: &["digest"],
};

/// A composite's settings reach Hetzner through the primitives it expands to; the diff works on
/// those, so the composite's own attributes are `Local`.
const POSTGRES: BlockSchema = BlockSchema {
    attrs: &[
        local(within(with_default(attr("version", Ty::Int), Default::Int(16)), 13, 18)),
        local(attr("extensions", Ty::ListOfString)),
        local(attr("server_type", Ty::String)),
        local(attr("location", Ty::String)),
        local(within(required("storage_gb", Ty::Int), 10, 10_240)),
        local(within(with_default(attr("replicas", Ty::Int), Default::Int(0)), 0, 16)),
        local(attr("replica_location", Ty::String)),
        local(attr("replica_server_type", Ty::String)),
        local(attr("shard_key", Ty::String)),
        local(with_default(attr("pgbouncer", Ty::Bool), Default::Bool(false))),
        local(attr("network", Ty::Ref(&[Kind::Network]))),
        local(attr("on", Ty::Ref(&[Kind::Server]))),
        local(with_default(attr("image", Ty::String), Default::Str("ubuntu-24.04"))),
        local(attr("database", Ty::String)),
        local(attr("user", Ty::String)),
        local(attr("clients", Ty::Refs(&[Kind::Server]))),
        local(attr("docker_clients", Ty::Bool)),
        local(attr("labels", Ty::Labels)),
        local(within(attr("migration_keep_days", Ty::Int), 0, 3_650)),
    ],
    blocks: &[nested("backup", &BACKUP, false, Update::Local)],
    computed: &[
        "host",
        "primary_private_ip",
        "primary_ipv4",
        "replica_private_ips",
        "replica_ipv4s",
        "port",
        "pgbouncer_port",
        "password",
        "replication_password",
        "database_url",
        "public_database_url",
        "shard_map",
        "restore_procedure",
    ],
};

const REDIS: BlockSchema = BlockSchema {
    attrs: &[
        local(within(with_default(attr("version", Ty::Int), Default::Int(7)), 6, 8)),
        local(within(required("memory_mb", Ty::Int), 16, 1_048_576)),
        local(attr("server_type", Ty::String)),
        local(attr("location", Ty::String)),
        local(attr("network", Ty::Ref(&[Kind::Network]))),
        local(within(with_default(attr("replicas", Ty::Int), Default::Int(0)), 0, 16)),
        local(attr("on", Ty::Ref(&[Kind::Server]))),
        local(with_default(attr("image", Ty::String), Default::Str("ubuntu-24.04"))),
        local(attr("clients", Ty::Refs(&[Kind::Server]))),
        local(attr("docker_clients", Ty::Bool)),
        local(attr("labels", Ty::Labels)),
    ],
    blocks: &[],
    computed: &["host", "private_ip", "replica_private_ips", "port", "password", "url"],
};

/// The schema of a kind's block as written in a phase file.
pub fn of(kind: Kind) -> &'static BlockSchema {
    match kind {
        Kind::Bucket => &BUCKET,
        Kind::Certificate => &CERTIFICATE,
        Kind::Firewall => &FIREWALL,
        Kind::FloatingIp => &FLOATING_IP,
        Kind::Host => &HOST,
        Kind::Keypair => &KEYPAIR,
        Kind::LoadBalancer => &LOAD_BALANCER,
        Kind::Network => &NETWORK,
        Kind::PlacementGroup => &PLACEMENT_GROUP,
        Kind::Postgres => &POSTGRES,
        Kind::PrimaryIp => &PRIMARY_IP,
        Kind::Redis => &REDIS,
        Kind::Secret => &SECRET,
        Kind::Server => &SERVER,
        Kind::SshKey => &SSH_KEY,
        Kind::Volume => &VOLUME,
    }
}

/// The computed attributes a resource with these attributes will have: a private IP only on a
/// network, and none of those already set.
pub fn computed_for<'a>(
    kind: Kind,
    attrs: &'a std::collections::BTreeMap<String, crate::value::Value>,
) -> impl Iterator<Item = &'static str> + 'a {
    let on_network = attrs.get("network").is_some_and(|v| !matches!(v, crate::value::Value::Null));
    of(kind)
        .computed
        .iter()
        .copied()
        .filter(move |name| !attrs.contains_key(*name))
        .filter(move |name| *name != "private_ip" || on_network)
}

/// The attributes of a kind that run at first boot only (`user_data`): a service keeps them on its
/// servers once made (`ignore_changes`).
pub fn first_boot_attrs(kind: Kind) -> Vec<String> {
    of(kind).attrs.iter().filter(|a| a.first_boot).map(|a| a.name.to_owned()).collect()
}

/// The attribute names a reference may read on an object of this kind: configured and computed ones.
pub fn readable(kind: Kind) -> impl Iterator<Item = &'static str> {
    let schema = of(kind);
    let derived = DERIVED.iter().filter(move |(k, _, _)| *k == kind).map(|(_, name, _)| *name);
    schema.computed.iter().copied().chain(schema.attrs.iter().map(|attr| attr.name)).chain(derived)
}

/// Attributes terrace derives from another attribute of the same object, readable in references but
/// never sent or shown: (kind, name, source). A server's `ipv4_cidr` is its `ipv4_address` as a /32,
/// as firewall rules want it.
/// A key pair's `private_key_escaped` is its private key escaped for a double-quoted YAML string
/// (cloud-init's `ssh_keys`), so that it fits on the one line of a template's placeholder.
const DERIVED: &[(Kind, &str, &str)] =
    &[(Kind::Server, "ipv4_cidr", "ipv4_address"), (Kind::Keypair, "private_key_escaped", "private_key")];

/// Reads attribute `name` of an object of `kind` through `read`, deriving it when it is derived.
/// Every reader of recorded values goes through here, so a derivation is written once.
pub fn read_attribute(kind: Kind, name: &str, read: impl Fn(&str) -> Option<Value>) -> Option<Value> {
    match DERIVED.iter().find(|(k, derived, _)| *k == kind && *derived == name) {
        Some((_, "ipv4_cidr", source)) => {
            read(source).and_then(|ip| ip.as_str().map(|ip| Value::String(format!("{ip}/32"))))
        }
        Some((_, "private_key_escaped", source)) => match read(source)? {
            Value::Sensitive(inner) => {
                inner.as_str().map(|key| Value::Sensitive(Box::new(Value::String(yaml_escape(key)))))
            }
            Value::String(key) => Some(Value::Sensitive(Box::new(Value::String(yaml_escape(&key))))),
            _ => None,
        },
        Some(_) => None,
        None => read(name),
    }
}

/// A text as the inside of a double-quoted YAML (or JSON) string: `\` and `"` escaped, line breaks
/// as `\n`, other control characters as `\uXXXX`.
fn yaml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The closest known name, for "did you mean" hints.
pub fn suggest<'a>(written: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(written, candidate), candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}
