//! Tests of the price catalog: the embedded data, selection by date, file loading, prices, availability
//! and the served `GET /pricing` body.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

use super::catalog::{EMBEDDED_LISTS, is_calendar_date};
use super::*;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("test decimal")
}

fn net(p: Option<Price>) -> Option<Decimal> {
    p.map(|p| p.net)
}

fn at(date: &str) -> Catalog {
    Catalog::load(date).expect("embedded list for date")
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shared_pricing_dir() -> PathBuf {
    manifest_dir().join("../../shared/hetzner/pricing")
}

/// A file in the temp folder, removed when dropped, so parallel tests and reruns do not collide.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("terrace-pricing-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write temp file");
        TempFile(path)
    }

    fn spec(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn embedded_text(file: &str) -> &'static str {
    EMBEDDED_LISTS.iter().find(|(f, _)| *f == file).map(|(_, t)| *t).expect("embedded file")
}

// ---- the embedded data -------------------------------------------------------------------------

#[test]
fn embedded_copies_are_byte_identical_to_shared() {
    let dir = shared_pricing_dir();
    if !dir.is_dir() {
        println!("note: {} not found; skipping the byte comparison", dir.display());
        return;
    }
    for (file, text) in EMBEDDED_LISTS {
        let shared = std::fs::read(dir.join(file)).expect("shared price list");
        assert!(shared == text.as_bytes(), "providers/catalog/{file} differs from shared/hetzner/pricing/{file}");
    }
}

#[test]
fn lists_are_the_four_files_oldest_first() {
    let lists = Catalog::lists();
    let ids: Vec<(&str, &str)> = lists.iter().map(|l| (l.id.as_str(), l.file.as_str())).collect();
    assert_eq!(
        ids,
        [
            ("2025-08-19", "pricing-2025-08.json"),
            ("2025-10-16", "pricing-2025-10.json"),
            ("2026-04-01", "pricing-2026-04.json"),
            ("2026-06-15", "pricing.json"),
        ]
    );
    assert!(lists.iter().all(|l| !l.description.is_empty() && l.sources.contains('S')));
}

/// Walks every object of `value`, calling `f` with its key path.
fn walk<'a>(value: &'a Value, path: &str, f: &mut impl FnMut(&str, &'a serde_json::Map<String, Value>)) {
    match value {
        Value::Object(map) => {
            f(path, map);
            for (k, v) in map {
                walk(v, &format!("{path}.{k}"), f);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, &format!("{path}[{i}]"), f);
            }
        }
        _ => {}
    }
}

fn source_ids(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    (0..b.len().saturating_sub(2))
        .filter(|&i| b[i] == b'S' && b[i + 1].is_ascii_digit() && b[i + 2].is_ascii_digit())
        .map(|i| text[i..i + 3].to_owned())
        .collect()
}

#[test]
fn every_extras_fact_names_its_sources() {
    let extras: Value = serde_json::from_str(include_str!("../../catalog/extras.json")).expect("extras parses");
    let fact_keys = ["cores", "city", "announced", "since", "max_services", "base_monthly_net"];
    let mut cited = Vec::new();
    let mut facts = 0;
    walk(&extras, "", &mut |path, map| {
        if fact_keys.iter().any(|k| map.contains_key(*k)) {
            facts += 1;
            let source = map.get("_source").and_then(Value::as_str).unwrap_or("");
            let ids = source_ids(source);
            assert!(!ids.is_empty(), "{path} has no `_source` with an S-id");
            cited.extend(ids);
        }
        if let Some(s) = map.get("sources").and_then(Value::as_str) {
            cited.extend(source_ids(s));
        }
    });
    // 6 locations, 29 server types, 9 deprecations, 1 unavailability, 8 restrictions, 3 LB types and
    // 4 object-storage prices: a fact without a source would have been caught above.
    assert_eq!(facts, 60);
    let sources_md = shared_pricing_dir().join("SOURCES.md");
    match std::fs::read_to_string(&sources_md) {
        Ok(text) => {
            for id in cited {
                assert!(text.contains(&format!("| {id} |")), "{id} is not in SOURCES.md's registry");
            }
        }
        Err(_) => println!("note: {} not found; source ids not checked", sources_md.display()),
    }
}

#[test]
fn every_priced_type_and_location_is_known_to_extras() {
    for list in Catalog::lists() {
        let c = at(&list.id);
        let response = c.pricing_response_json();
        for name in c.server_type_names() {
            assert!(c.server_type(&name).is_some(), "{name} of {} has no spec", list.id);
        }
        for name in c.load_balancer_type_names() {
            assert!(c.load_balancer_limits(&name).is_some(), "{name} has no limits");
        }
        let mut unknown = Vec::new();
        walk(&response, "", &mut |path, map| {
            if let Some(loc) = map.get("location").and_then(Value::as_str)
                && c.location(loc).is_none()
            {
                unknown.push(format!("{path}: {loc}"));
            }
        });
        assert!(unknown.is_empty(), "unknown locations in {}: {unknown:?}", list.id);
    }
}

#[test]
fn calendar_dates() {
    assert!(is_calendar_date("2024-02-29"));
    assert!(!is_calendar_date("2025-02-29"));
    assert!(!is_calendar_date("2026-13-01"));
    assert!(!is_calendar_date("2026-04-31"));
    assert!(!is_calendar_date("2026-4-01x"));
}

// ---- selection by date -------------------------------------------------------------------------

#[test]
fn embedded_is_the_newest_list() {
    let c = Catalog::embedded();
    assert_eq!(c.date().as_deref(), Some("2026-06-15"));
    assert_eq!(c.label(), "Hetzner public list prices of 2026-06-15 (embedded)");
    assert_eq!(c.currency(), "EUR");
}

#[test]
fn a_date_selects_the_list_in_force() {
    for (date, expected) in [
        ("2025-08-19", "2025-08-19"),
        ("2025-10-15", "2025-08-19"),
        ("2025-10-16", "2025-10-16"),
        ("2026-03-31", "2025-10-16"),
        ("2026-04-01", "2026-04-01"),
        ("2026-05-31", "2026-04-01"),
        ("2026-06-14", "2026-04-01"),
        ("2026-06-15", "2026-06-15"),
        ("2030-01-01", "2026-06-15"),
    ] {
        assert_eq!(at(date).date().as_deref(), Some(expected), "for {date}");
    }
    assert_eq!(net(at("2026-05-31").server_monthly("cpx22", "fsn1")), Some(dec("7.99")));
}

#[test]
fn a_date_before_the_oldest_list_is_an_error_naming_the_lists() {
    let err = Catalog::load("2025-01-01").expect_err("too old");
    assert!(matches!(err, CatalogError::DateBeforeOldestList { .. }), "{err:?}");
    let message = err.to_string();
    for list in Catalog::lists() {
        assert!(message.contains(&list.id), "{message}");
        assert!(message.contains(&list.file), "{message}");
    }
    assert!(message.contains("2025-01-01"), "{message}");
}

#[test]
fn an_impossible_date_is_an_error_not_a_path() {
    let err = Catalog::load("2026-02-30").expect_err("no such day");
    assert!(matches!(err, CatalogError::InvalidDate { .. }), "{err:?}");
}

// ---- files -------------------------------------------------------------------------------------

#[test]
fn a_file_with_the_full_response_loads() {
    // The embedded list files are `{"_meta": .., "pricing": {..}}`: a full response plus provenance.
    let file = TempFile::new("full.json", embedded_text("pricing-2026-04.json"));
    let c = Catalog::load(file.spec()).expect("full response loads");
    assert_eq!(net(c.server_monthly("cpx22", "fsn1")), Some(dec("7.99")));
    assert_eq!(c.date(), None);
    assert_eq!(c.label(), format!("pricing file {}", file.spec()));
    assert_eq!(c.object_storage(), None, "a file has no object-storage price");
    // Specs and facts still come from extras.json, all of them.
    assert_eq!(c.server_type("cpx22").map(|s| s.cores), Some(2));
    assert!(matches!(c.availability("cx23", "fsn1"), Availability::Restricted { .. }));
}

#[test]
fn a_file_catalog_applies_every_fact() {
    // The 2025-08 list read as a file is undated, so the later deprecation of cx22 applies to it.
    let file = TempFile::new("old.json", embedded_text("pricing-2025-08.json"));
    let c = Catalog::load(file.spec()).expect("loads");
    assert_eq!(net(c.server_monthly("cx22", "nbg1")), Some(dec("3.29")));
    match c.availability("cx22", "nbg1") {
        Availability::Deprecated { note, .. } => assert!(note.contains("2025-12-31"), "{note}"),
        other => panic!("cx22 nbg1 from a file: {other:?}"),
    }
    assert_eq!(c.availability("cpx11", "ash"), Availability::Available);
    assert!(matches!(c.availability("cpx11", "sin"), Availability::Deprecated { .. }));
}

#[test]
fn a_file_with_the_bare_pricing_object_loads() {
    let full: Value = serde_json::from_str(embedded_text("pricing.json")).expect("embedded list parses");
    let bare = serde_json::to_string(&full["pricing"]).expect("serialize");
    let file = TempFile::new("bare.json", &bare);
    let c = Catalog::load(file.spec()).expect("bare object loads");
    assert_eq!(net(c.server_monthly("cpx22", "fsn1")), Some(dec("19.49")));
    assert_eq!(c.vat_rate_percent(), dec("19.00"));
}

#[test]
fn the_served_body_loads_back_with_the_same_prices() {
    let original = Catalog::embedded();
    let body = serde_json::to_string(&original.pricing_response_json()).expect("serialize");
    let file = TempFile::new("served.json", &body);
    let c = Catalog::load(file.spec()).expect("served body loads");
    assert_eq!(c.pricing_response_json(), original.pricing_response_json());
    assert_eq!(c.server_type_names(), original.server_type_names());
    for name in original.server_type_names() {
        for loc in original.locations() {
            assert_eq!(c.server_monthly(&name, &loc.name), original.server_monthly(&name, &loc.name));
        }
    }
}

#[test]
fn a_file_may_carry_an_object_storage_price() {
    let mut full: Value = serde_json::from_str(embedded_text("pricing.json")).expect("embedded list parses");
    full["pricing"]["object_storage"] = serde_json::json!({
        "price_monthly": {"net": "6.4900", "gross": "7.7231"},
        "included_storage_tb": "1",
        "included_egress_tb": "1",
        "price_per_tb_hour_storage": {"net": "0.0087", "gross": "0.0104"}
    });
    let file = TempFile::new("with-os.json", &full.to_string());
    let c = Catalog::load(file.spec()).expect("loads");
    let os = c.object_storage().expect("object storage from the file");
    assert_eq!(os.base_monthly.net, dec("6.49"));
    assert_eq!(os.extra_egress_per_tb, None);
    // terrace's extension is not part of Hetzner's schema, so it is not served.
    assert!(c.pricing_response_json()["pricing"].get("object_storage").is_none());
}

#[test]
fn broken_files_are_errors_naming_the_path_and_the_problem() {
    let syntax = TempFile::new("syntax.json", "{\"pricing\": ");
    let err = Catalog::load(syntax.spec()).expect_err("not JSON");
    assert!(matches!(err, CatalogError::Syntax { .. }), "{err:?}");
    assert!(err.to_string().contains(syntax.spec()), "{err}");
    assert!(err.to_string().contains("line 1"), "{err}");

    let shape = TempFile::new("shape.json", r#"{"pricing": {"currency": "EUR"}}"#);
    let err = Catalog::load(shape.spec()).expect_err("wrong shape");
    assert!(matches!(err, CatalogError::Shape { .. }), "{err:?}");
    assert!(err.to_string().contains(shape.spec()), "{err}");
    assert!(err.to_string().contains("missing field `vat_rate`"), "{err}");

    let missing = Path::new("/nonexistent/terrace/prices.json");
    let err = Catalog::load(missing.to_str().expect("utf-8")).expect_err("no file");
    assert!(matches!(err, CatalogError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/terrace/prices.json"), "{err}");
}

// ---- prices ------------------------------------------------------------------------------------

#[test]
fn known_server_prices() {
    let newest = Catalog::embedded();
    assert_eq!(net(newest.server_monthly("cpx22", "fsn1")), Some(dec("19.49")));
    assert_eq!(newest.server_monthly("cpx22", "fsn1").map(|p| p.gross), Some(dec("23.1931")));
    assert_eq!(net(newest.server_monthly("ccx13", "ash")), Some(dec("43.49")));
    assert_eq!(net(at("2026-04-01").server_monthly("cpx22", "fsn1")), Some(dec("7.99")));
    assert_eq!(net(at("2025-08-19").server_monthly("cx22", "fsn1")), Some(dec("3.29")));
    assert_eq!(newest.server_monthly("cx23", "sin"), None);
    assert_eq!(newest.server_monthly("cx99", "fsn1"), None);
}

#[test]
fn server_type_names_are_the_priced_types_sorted() {
    let names = at("2025-08-19").server_type_names();
    assert!(names.contains(&"cx22".to_owned()) && !names.contains(&"cx23".to_owned()));
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(Catalog::embedded().server_type_names().len(), 25);
}

#[test]
fn server_type_specs() {
    let c = Catalog::embedded();
    let cax21 = c.server_type("cax21").expect("cax21");
    assert_eq!((cax21.cores, cax21.memory_gb, cax21.disk_gb), (4, dec("8"), 80));
    assert_eq!(cax21.architecture, Architecture::Arm);
    assert_eq!(cax21.cpu_type, CpuType::Shared);
    assert_eq!(c.server_type("ccx63").map(|s| s.cpu_type), Some(CpuType::Dedicated));
    // Specs are facts about the type, so an older type is known to the newest catalog too.
    assert_eq!(c.server_type("cx22").map(|s| s.storage_type), Some(StorageType::Local));
    assert_eq!(c.server_type("cx99"), None);
}

#[test]
fn known_load_balancer_prices_and_limits() {
    let c = Catalog::embedded();
    assert_eq!(net(c.load_balancer_monthly("lb11", "fsn1")), Some(dec("7.49")));
    assert_eq!(c.load_balancer_monthly("lb11", "nbg1"), None);
    assert_eq!(c.load_balancer_monthly("lb31", "fsn1"), None, "lb31 price not found");
    assert_eq!(c.load_balancer_type_names(), ["lb11", "lb21", "lb31"]);
    assert_eq!(
        c.load_balancer_limits("lb21"),
        Some(LbLimits { max_services: 15, max_targets: 75, max_assigned_certificates: 25, max_connections: 20_000 })
    );
    // lb31 has no `_specs` in the list, and the 2025-08 list has none at all: extras.json answers.
    assert_eq!(c.load_balancer_limits("lb31").map(|l| l.max_targets), Some(150));
    assert_eq!(at("2025-08-19").load_balancer_limits("lb11").map(|l| l.max_services), Some(5));
    assert_eq!(c.load_balancer_limits("lb99"), None);
}

#[test]
fn known_ip_volume_and_backup_prices() {
    let c = Catalog::embedded();
    assert_eq!(net(c.volume_per_gb_monthly()), Some(dec("0.0572")));
    assert_eq!(net(at("2025-08-19").volume_per_gb_monthly()), Some(dec("0.044")));
    assert_eq!(c.backup_percent(), Some(dec("20")));
    assert_eq!(net(c.primary_ip_monthly("ipv4", "fsn1")), Some(dec("0.50")));
    // A real zero, not an unknown.
    assert_eq!(c.primary_ip_monthly("ipv6", "fsn1"), Some(Price { net: Decimal::ZERO, gross: Decimal::ZERO }));
    assert_eq!(c.primary_ip_monthly("ipv4", "nowhere"), None);
    assert_eq!(net(c.floating_ip_monthly("ipv4", "fsn1")), Some(dec("3.00")));
    assert_eq!(c.floating_ip_monthly("ipv4", "ash"), None);
    assert_eq!(c.floating_ip_monthly("ipv6", "fsn1"), None);
}

#[test]
fn object_storage_follows_the_list() {
    let base = |date: &str| at(date).object_storage().map(|o| o.base_monthly.net);
    assert_eq!(base("2025-08-19"), Some(dec("4.99")));
    assert_eq!(base("2025-10-16"), Some(dec("4.99")));
    assert_eq!(base("2026-04-01"), Some(dec("6.49")));
    let newest = Catalog::embedded().object_storage().expect("newest has one");
    assert_eq!(newest.base_monthly.gross, dec("7.7231"));
    assert_eq!((newest.included_storage_tb, newest.included_egress_tb), (dec("1"), dec("1")));
    assert_eq!(newest.extra_storage_per_tb_hour.map(|p| p.net), Some(dec("0.0087")));
    assert_eq!(at("2026-04-01").object_storage().and_then(|o| o.extra_storage_per_tb_hour), None);
}

#[test]
fn gross_adds_19_percent_rounded_half_away_from_zero() {
    let c = Catalog::embedded();
    assert_eq!(c.vat_rate_percent(), dec("19.00"));
    assert_eq!(c.gross(dec("5.49")), dec("6.5331"));
    assert_eq!(c.gross(dec("0.0572")), dec("0.0681"));
    // 0.0150 x 1.19 = 0.01785: a midpoint, where banker's rounding would give 0.0178.
    assert_eq!(c.gross(dec("0.0150")), dec("0.0179"));
    assert_eq!(c.gross(Decimal::ZERO), Decimal::ZERO);
}

#[test]
fn every_listed_gross_is_the_net_at_19_percent() {
    for list in Catalog::lists() {
        let c = at(&list.id);
        let mut checked = 0;
        walk(&c.pricing_response_json(), "", &mut |path, map| {
            if let (Some(n), Some(g)) =
                (map.get("net").and_then(Value::as_str), map.get("gross").and_then(Value::as_str))
            {
                assert_eq!(c.gross(dec(n)), dec(g), "{} {path}", list.id);
                checked += 1;
            }
        });
        assert!(checked > 100, "{}: only {checked} prices", list.id);
    }
}

// ---- availability ------------------------------------------------------------------------------

#[test]
fn availability_in_the_newest_list() {
    let c = Catalog::embedded();
    match c.availability("cpx21", "fsn1") {
        Availability::Deprecated { announced, unavailable_after, .. } => {
            assert_eq!(announced, "2025-10-16");
            assert_eq!(unavailable_after.as_deref(), Some("2025-12-31"));
        }
        other => panic!("cpx21 fsn1: {other:?}"),
    }
    assert_eq!(c.availability("cpx21", "ash"), Availability::Available);
    match c.availability("cx23", "fsn1") {
        Availability::Restricted { since, .. } => assert_eq!(since, "2026-06-26"),
        other => panic!("cx23 fsn1: {other:?}"),
    }
    assert!(matches!(c.availability("cax41", "hel1"), Availability::Restricted { .. }));
    assert_eq!(c.availability("cx23", "sin"), Availability::NotPriced);
    assert_eq!(c.availability("cpx22", "fsn1"), Availability::Available);
    assert_eq!(c.availability("ccx13", "hil"), Availability::Available);
    assert_eq!(c.availability("cx22", "fsn1"), Availability::NotPriced);
}

#[test]
fn availability_applies_only_facts_known_by_the_date() {
    // The 2025-10-16 deprecation is not yet known to the 2025-08 list.
    assert_eq!(at("2025-08-19").availability("cx22", "fsn1"), Availability::Available);
    assert_eq!(at("2025-10-15").availability("cpx11", "sin"), Availability::Available);
    assert!(matches!(at("2025-10-16").availability("cpx11", "ash"), Availability::Available));
    // The capacity restriction starts 2026-06-26, after the newest list's first day.
    assert_eq!(at("2026-06-15").availability("cx23", "fsn1"), Availability::Available);
    assert!(matches!(at("2026-06-26").availability("cx23", "fsn1"), Availability::Restricted { .. }));
}

// ---- locations ---------------------------------------------------------------------------------

#[test]
fn locations_and_network_zones() {
    let c = Catalog::embedded();
    let names: Vec<String> = c.locations().into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["ash", "fsn1", "hel1", "hil", "nbg1", "sin"]);
    assert_eq!(
        c.location("hel1"),
        Some(LocationInfo {
            name: "hel1".into(),
            city: "Helsinki".into(),
            country: "FI".into(),
            network_zone: "eu-central".into()
        })
    );
    assert_eq!(c.location("hil").map(|l| l.network_zone), Some("us-west".into()));
    assert_eq!(c.location("xyz1"), None);
    assert_eq!(c.network_zones(), ["ap-southeast", "eu-central", "us-east", "us-west"]);
}

// ---- the served body ---------------------------------------------------------------------------

#[test]
fn the_response_has_no_provenance_keys() {
    for list in Catalog::lists() {
        let body = at(&list.id).pricing_response_json();
        walk(&body, "", &mut |path, map| {
            let bad: Vec<&String> = map.keys().filter(|k| k.starts_with('_')).collect();
            assert!(bad.is_empty(), "{}: {path} has {bad:?}", list.id);
        });
    }
}

#[test]
fn the_response_has_the_required_fields() {
    // Written out from `list_prices_response` so the test also runs where the OpenAPI file is absent.
    let body = Catalog::embedded().pricing_response_json();
    let pricing = body["pricing"].as_object().expect("pricing object");
    for key in [
        "currency",
        "floating_ip",
        "floating_ips",
        "image",
        "load_balancer_types",
        "primary_ips",
        "server_backup",
        "server_types",
        "vat_rate",
        "volume",
    ] {
        assert!(pricing.contains_key(key), "missing {key}");
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in body["pricing"]["server_types"].as_array().expect("array") {
        let id = t["id"].as_u64().expect("server type id");
        assert!(ids.insert(id), "duplicate id {id}");
        for p in t["prices"].as_array().expect("prices") {
            for key in ["location", "price_hourly", "price_monthly", "included_traffic", "price_per_tb_traffic"] {
                assert!(p.get(key).is_some(), "{} lacks {key}", t["name"]);
            }
        }
    }
    assert_eq!(body["pricing"]["load_balancer_types"][2]["name"], "lb31");
    assert_eq!(body["pricing"]["load_balancer_types"][2]["id"], 3);
    assert_eq!(body["pricing"]["load_balancer_types"][0]["id"], 1);
    assert_eq!(body["pricing"]["server_types"][0]["prices"][0]["price_monthly"]["net"], "5.4900");
}

#[test]
fn synthetic_ids_are_stable_across_lists() {
    let ids: Vec<Option<u64>> = Catalog::lists().iter().map(|l| at(&l.id).server_type_id("ccx13")).collect();
    assert!(ids.iter().all(|id| id.is_some() && *id == ids[0]), "{ids:?}");
    assert_eq!(Catalog::embedded().load_balancer_type_id("lb21"), Some(2));
}

/// Checks `value` against an OpenAPI schema: required properties present, types right, recursing through
/// `$ref`, `properties` and `items`. `null` is accepted only for the two fields our data leaves null.
fn check_schema(root: &Value, schema: &Value, value: &Value, path: &str, problems: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/components/schemas/");
        let target = &root["components"]["schemas"][name];
        return check_schema(root, target, value, path, problems);
    }
    if value.is_null() {
        let known_deviation = path.ends_with(".price_hourly") || path.ends_with(".included_traffic");
        if !known_deviation {
            problems.push(format!("{path} is null"));
        }
        return;
    }
    let ok = match schema.get("type").and_then(Value::as_str) {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_u64() || value.is_i64(),
        _ => true,
    };
    if !ok {
        problems.push(format!("{path} is not {}", schema["type"]));
        return;
    }
    if let Some(enumeration) = schema.get("enum").and_then(Value::as_array)
        && !enumeration.contains(value)
    {
        problems.push(format!("{path} = {value} not in {enumeration:?}"));
    }
    for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
        let key = required.as_str().unwrap_or_default();
        if value.get(key).is_none() {
            problems.push(format!("{path} lacks required `{key}`"));
        }
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (key, sub) in properties {
            if let Some(v) = value.get(key) {
                check_schema(root, sub, v, &format!("{path}.{key}"), problems);
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            check_schema(root, items, v, &format!("{path}[{i}]"), problems);
        }
    }
}

#[test]
fn the_response_matches_the_openapi_schema() {
    let file = manifest_dir().join("../../shared/hetzner/hcloud-openapi.json");
    let Ok(text) = std::fs::read_to_string(&file) else {
        println!("note: {} not found; schema check skipped", file.display());
        return;
    };
    let root: Value = serde_json::from_str(&text).expect("OpenAPI parses");
    let schema = &root["components"]["schemas"]["list_prices_response"];
    assert!(schema.is_object(), "list_prices_response not in the OpenAPI");
    for list in Catalog::lists() {
        let mut problems = Vec::new();
        check_schema(&root, schema, &at(&list.id).pricing_response_json(), "", &mut problems);
        assert!(problems.is_empty(), "{}: {problems:#?}", list.id);
    }
}
