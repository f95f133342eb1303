//! Pagination, sorting and the common list filters (`name`, `label_selector`, `sort`, `page`, `per_page`).

use super::errors::ApiError;
use super::labels::{Labels, Selector};

/// What the list endpoints need to know about an object to filter, sort and page it.
pub(crate) trait Listed {
    fn id(&self) -> u64;
    fn name(&self) -> &str;
    fn labels(&self) -> Option<&Labels> {
        None
    }
    fn created(&self) -> i64 {
        0
    }
}

/// The common list parameters, already taken out of the query string.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListQuery {
    pub(crate) name: Option<String>,
    pub(crate) label_selector: Option<String>,
    pub(crate) sort: Vec<String>,
    pub(crate) page: Option<String>,
    pub(crate) per_page: Option<String>,
}

/// `meta.pagination` of a list answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pagination {
    pub(crate) page: u64,
    pub(crate) per_page: u64,
    pub(crate) previous_page: Option<u64>,
    pub(crate) next_page: Option<u64>,
    pub(crate) last_page: u64,
    pub(crate) total_entries: u64,
}

/// Hetzner's default page size and its maximum (larger values are capped).
pub(crate) const DEFAULT_PER_PAGE: u64 = 25;
pub(crate) const MAX_PER_PAGE: u64 = 50;

fn positive(field: &str, value: Option<&str>, default: u64) -> Result<u64, ApiError> {
    match value {
        None => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(ApiError::invalid_field(field, &format!("`{v}` is not a positive integer"))),
        },
    }
}

/// Filters by `name` and `label_selector`, sorts by `sort` (`id`, `name`, `created`, each with `:asc` or
/// `:desc`; by id otherwise) and cuts out the page.
pub(crate) fn list<'a, T: Listed + 'a>(
    items: impl Iterator<Item = &'a T>,
    query: &ListQuery,
) -> Result<(Vec<&'a T>, Pagination), ApiError> {
    let selector = match &query.label_selector {
        Some(s) => Some(Selector::parse(s).map_err(|m| ApiError::invalid_field("label_selector", &m))?),
        None => None,
    };
    let mut found: Vec<&T> = items
        .filter(|t| query.name.as_deref().is_none_or(|n| t.name() == n))
        .filter(|t| selector.as_ref().is_none_or(|s| t.labels().is_some_and(|l| s.matches(l))))
        .collect();
    sort(&mut found, &query.sort)?;
    page(found, query)
}

/// Sorts by the `sort` keys in order (the first is the primary key), then by id.
pub(crate) fn sort<T: Listed>(items: &mut [&T], keys: &[String]) -> Result<(), ApiError> {
    let mut parsed = Vec::new();
    for key in keys {
        let (field, desc) = match key.split_once(':') {
            Some((f, "asc")) => (f, false),
            Some((f, "desc")) => (f, true),
            None => (key.as_str(), false),
            Some(_) => return Err(ApiError::invalid_field("sort", &format!("`{key}` is not a valid sort"))),
        };
        if !matches!(field, "id" | "name" | "created") {
            return Err(ApiError::invalid_field("sort", &format!("cannot sort by `{field}`")));
        }
        parsed.push((field.to_owned(), desc));
    }
    items.sort_by(|a, b| {
        for (field, desc) in &parsed {
            let ord = match field.as_str() {
                "name" => a.name().cmp(b.name()),
                "created" => a.created().cmp(&b.created()),
                _ => a.id().cmp(&b.id()),
            };
            let ord = if *desc { ord.reverse() } else { ord };
            if ord.is_ne() {
                return ord;
            }
        }
        a.id().cmp(&b.id())
    });
    Ok(())
}

/// Cuts one page out of items already filtered and sorted.
pub(crate) fn page<T>(items: Vec<T>, query: &ListQuery) -> Result<(Vec<T>, Pagination), ApiError> {
    let page = positive("page", query.page.as_deref(), 1)?;
    let per_page = positive("per_page", query.per_page.as_deref(), DEFAULT_PER_PAGE)?.min(MAX_PER_PAGE);
    let total = items.len() as u64;
    let last_page = total.div_ceil(per_page).max(1);
    let skip = usize::try_from((page - 1).saturating_mul(per_page)).unwrap_or(usize::MAX);
    let taken: Vec<T> = items.into_iter().skip(skip).take(usize::try_from(per_page).unwrap_or(usize::MAX)).collect();
    Ok((
        taken,
        Pagination {
            page,
            per_page,
            previous_page: (page > 1).then(|| (page - 1).min(last_page)),
            next_page: (page < last_page).then_some(page + 1),
            last_page,
            total_entries: total,
        },
    ))
}
