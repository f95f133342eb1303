//! Static Hetzner rules, checked on the compiled graph before any network call: server types,
//! locations and prices in the catalog, sizes and limits, labels and names, networks, subnets and
//! zones, load balancer limits, primary IPs; and that every consumer of a service reaches it.
//! Every violation is reported, with a hint.

mod network;
mod reach;
mod rules;

use terrace_providers::pricing::Catalog;

use crate::diag::Diagnostics;
use crate::model::Compiled;

/// Checks a compiled phase; returns errors and warnings.
pub fn validate(compiled: &Compiled, catalog: &Catalog) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let mut check = rules::Checker { compiled, catalog, diags: &mut diags };
    check.catalog_rules();
    check.volumes();
    check.names_and_labels();
    check.servers();
    check.composites();
    let mut net = network::NetworkChecker { compiled, catalog, diags: &mut diags };
    net.networks();
    net.attachments();
    net.private_reads();
    net.load_balancers();
    net.primary_ips();
    reach::ReachChecker { compiled, catalog, diags: &mut diags }.reach();
    diags
}
