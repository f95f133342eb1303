//! Pagination, `label_selector`, `name` and `sort` on list endpoints.

use serde_json::{Value, json};

use crate::support::{Api, ssh_public_key};

fn names(body: &Value, key: &str) -> Vec<String> {
    body[key].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap().to_owned()).collect()
}

async fn keys(api: &Api, labels: &[(&str, Value)]) {
    for (i, (name, l)) in labels.iter().enumerate() {
        api.create("/ssh_keys", json!({ "name": name, "public_key": ssh_public_key(i as u32), "labels": l })).await;
    }
}

#[tokio::test]
async fn pages_walk_the_whole_list_and_report_meta() {
    let api = Api::start().await;
    let all: Vec<(String, Value)> = (0..7).map(|i| (format!("key-{i}"), json!({}))).collect();
    let refs: Vec<(&str, Value)> = all.iter().map(|(n, l)| (n.as_str(), l.clone())).collect();
    keys(&api, &refs).await;

    let mut seen = Vec::new();
    let mut page = Some(1);
    while let Some(p) = page {
        let body = api.ok(&format!("/ssh_keys?per_page=3&page={p}")).await;
        let meta = &body["meta"]["pagination"];
        assert_eq!(
            (meta["per_page"].as_u64(), meta["last_page"].as_u64(), meta["total_entries"].as_u64()),
            (Some(3), Some(3), Some(7))
        );
        assert_eq!(meta["page"].as_u64(), Some(p));
        assert_eq!(meta["previous_page"].as_u64(), if p == 1 { None } else { Some(p - 1) });
        seen.extend(names(&body, "ssh_keys"));
        page = meta["next_page"].as_u64();
    }
    assert_eq!(seen, (0..7).map(|i| format!("key-{i}")).collect::<Vec<_>>());

    let beyond = api.ok("/ssh_keys?per_page=3&page=9").await;
    assert!(beyond["ssh_keys"].as_array().unwrap().is_empty());
    let capped = api.ok("/server_types?per_page=500").await;
    assert_eq!(capped["meta"]["pagination"]["per_page"], 50);
    let default = api.ok("/server_types").await;
    assert_eq!(default["meta"]["pagination"]["per_page"], 25);
    api.fails("GET", "/ssh_keys?page=0", None, 400, "invalid_input").await;
}

#[tokio::test]
async fn label_selectors_name_and_sort_filter_lists() {
    let api = Api::start().await;
    keys(
        &api,
        &[
            ("a", json!({ "env": "prod", "role": "db" })),
            ("b", json!({ "env": "staging", "role": "db" })),
            ("c", json!({ "env": "dev" })),
            ("d", json!({})),
        ],
    )
    .await;
    let select = |s: &'static str| {
        let api = &api;
        async move { names(&api.ok(&format!("/ssh_keys?label_selector={s}")).await, "ssh_keys") }
    };
    assert_eq!(select("env=prod").await, ["a"]);
    assert_eq!(select("env==prod").await, ["a"]);
    assert_eq!(select("env!=prod").await, ["b", "c", "d"]);
    assert_eq!(select("env%20in%20(prod,dev)").await, ["a", "c"]);
    assert_eq!(select("env%20notin%20(prod,dev)").await, ["b", "d"]);
    assert_eq!(select("role").await, ["a", "b"]);
    assert_eq!(select("!role").await, ["c", "d"]);
    assert_eq!(select("role=db,env=staging").await, ["b"]);
    api.fails("GET", "/ssh_keys?label_selector=env%20in%20(a", None, 400, "invalid_input").await;

    assert_eq!(names(&api.ok("/ssh_keys?name=c").await, "ssh_keys"), ["c"]);
    assert_eq!(names(&api.ok("/ssh_keys?sort=name:desc").await, "ssh_keys"), ["d", "c", "b", "a"]);
    assert_eq!(names(&api.ok("/locations?name=hel1").await, "locations"), ["hel1"]);
    api.fails("GET", "/ssh_keys?sort=color", None, 400, "invalid_input").await;
}

#[tokio::test]
async fn the_catalog_matches_the_price_catalog() {
    let api = Api::start().await;
    let catalog = terrace_providers::pricing::Catalog::embedded();
    let types = api.ok("/server_types?per_page=50").await;
    let mut served: Vec<String> = names(&types, "server_types");
    served.sort();
    assert_eq!(served, catalog.server_type_names());
    let cx23 = types["server_types"].as_array().unwrap().iter().find(|t| t["name"] == "cx23").unwrap();
    let spec = catalog.server_type("cx23").unwrap();
    assert_eq!(cx23["cores"].as_u64(), Some(u64::from(spec.cores)));
    assert_eq!(cx23["disk"].as_u64(), Some(u64::from(spec.disk_gb)));
    let fsn = cx23["prices"].as_array().unwrap().iter().find(|p| p["location"] == "fsn1").unwrap();
    assert_eq!(
        fsn["price_monthly"]["net"].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap(),
        catalog.server_monthly("cx23", "fsn1").unwrap().net
    );
    let locations = api.ok("/locations").await;
    for l in locations["locations"].as_array().unwrap() {
        let known = catalog.location(l["name"].as_str().unwrap()).unwrap();
        assert_eq!(l["network_zone"], known.network_zone.as_str());
    }
    let images = api.ok("/images?type=app&architecture=x86").await;
    assert_eq!(names(&images, "images"), ["docker-ce"]);
    let system = names(&api.ok("/images?type=system&architecture=x86&per_page=50").await, "images");
    for name in ["ubuntu-24.04", "ubuntu-22.04", "debian-12"] {
        assert!(system.contains(&name.to_owned()), "{name} missing from {system:?}");
    }
    assert_eq!(api.ok("/pricing").await, catalog.pricing_response_json());
}
