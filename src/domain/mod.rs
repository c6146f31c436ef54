//! Parsed domain newtypes: once a value is one of these, it is valid.
//! Parsing happens at the API edge; the store and the rest of the code trust them.

pub mod id;
pub mod phone;
pub mod schedule;
pub mod status;
pub mod template;
pub mod time;

pub use id::Id;
pub use phone::Phone;
pub use time::Timestamp;

/// OpenAPI schemas for the newtypes, so every `Id` and `Timestamp` field documents its format.
mod schemas {
    use std::borrow::Cow;

    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
    use utoipa::{PartialSchema, ToSchema};

    use super::{Id, Timestamp};

    impl PartialSchema for Id {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[0-9a-f]{24}$"))
                .description(Some("Resource id: 24 lowercase hexadecimal characters"))
                .examples([serde_json::json!("60a2e7f3b9c1a83e94d8f2c3")])
                .into()
        }
    }
    impl ToSchema for Id {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("Id")
        }
    }

    impl PartialSchema for Timestamp {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                .description(Some("RFC 3339 date-time in UTC"))
                .examples([serde_json::json!("2025-05-20T15:30:00Z")])
                .into()
        }
    }
    impl ToSchema for Timestamp {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("Timestamp")
        }
    }
}
