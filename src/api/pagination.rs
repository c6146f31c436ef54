//! The spec's list envelope: `{"data": [...], "pagination": {total, page, limit, pages}}`.

use serde::Serialize;
use utoipa::ToSchema;

use crate::store::{Page, PageRequest};

#[derive(Serialize, ToSchema)]
pub struct Pagination {
    #[schema(example = 157)]
    pub total: i64,
    #[schema(example = 1)]
    pub page: i64,
    #[schema(example = 20)]
    pub limit: i64,
    #[schema(example = 8)]
    pub pages: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Paginated<T: ToSchema> {
    pub data: Vec<T>,
    pub pagination: Pagination,
}

impl<T: ToSchema> Paginated<T> {
    pub fn new(page: Page<T>, request: PageRequest) -> Paginated<T> {
        Paginated::from_parts(page.items, page.total, request)
    }

    pub fn from_parts(data: Vec<T>, total: i64, request: PageRequest) -> Paginated<T> {
        let pages = if total == 0 { 0 } else { (total + request.limit - 1) / request.limit };
        Paginated { data, pagination: Pagination { total, page: request.page, limit: request.limit, pages } }
    }
}
