//! `/v1/templates`: create (with step ids), get (with usage count), list (industry,
//! search), update, delete (refused while a live campaign or an inbound phone number uses
//! the template).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorResponses};
use super::extract::{ApiJson, Auth, PathId, QueryParams};
use super::pagination::Paginated;
use super::{double_option, validate};
use crate::app::AppState;
use crate::domain::template::{Step, StepNext, StepType, is_variable_name, placeholders};
use crate::store::templates::{
    self, DeleteOutcome, ListFilter, Template, TemplateFields, TemplatePatch, TemplateSummary,
};

const MAX_STEPS: usize = 50;
const MAX_STEP_CONTENT: usize = 2000;
const MAX_STEP_ID: usize = 64;
const MAX_VARIABLES: usize = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_template, list_templates)).routes(routes!(
        get_template,
        update_template,
        delete_template
    ))
}

/// A step as sent by the client; its id is optional.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepInput {
    /// Give an id for every step or for none; by default steps are numbered "1", "2", ...
    #[schema(example = "1")]
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub step_type: StepType,
    #[schema(example = "Hello, this is {companyName}. Am I speaking with {contactName}?")]
    pub content: String,
    /// Branches by the caller's answer: step ids of this template (see `StepNext`).
    pub next: Option<StepNext>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "name": "Sales Outreach",
    "description": "Template for initial sales calls",
    "industry": "sales",
    "steps": [
        {"type": "greeting", "content": "Hello, this is {companyName}. Am I speaking with {contactName}?"},
        {"type": "information", "content": "I'm calling to tell you about our new {productName} that I think would be perfect for your business."},
        {"type": "question", "content": "Do you have a few minutes to discuss how this could benefit your company?"},
        {"type": "response", "content": "Great! Let me tell you about our key features..."},
        {"type": "closing", "content": "Thank you for your time. Would you like to schedule a follow-up call with one of our specialists?"}
    ],
    "variables": ["companyName", "contactName", "productName"]
}))]
pub struct CreateTemplate {
    pub name: String,
    pub description: Option<String>,
    /// Free text, matched case-insensitively by the `industry` list filter.
    pub industry: Option<String>,
    pub steps: Vec<StepInput>,
    /// The variables every call must supply; by default the `{placeholders}` of the
    /// steps and of `voicemailMessage` in order of appearance.
    pub variables: Option<Vec<String>>,
    /// Said after the beep when the call reaches an answering machine; may hold
    /// `{placeholders}`. Without it the call hangs up on a machine without a message.
    #[schema(example = "Hi {contactName}, this is {companyName}. Please call us back at 555-0100.")]
    pub voicemail_message: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"description": null, "variables": ["companyName", "contactName"]}))]
pub struct UpdateTemplate {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// `null` clears the description.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// `null` clears the industry.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub industry: Option<Option<String>>,
    /// Replaces all steps (ids as on create). The variables stay as they are unless
    /// `variables` is given too.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Vec<StepInput>>)]
    pub steps: Option<Option<Vec<StepInput>>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Vec<String>>)]
    pub variables: Option<Option<Vec<String>>>,
    /// `null` removes the voicemail message.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub voicemail_message: Option<Option<String>>,
}

/// A PATCH field that may be left out but not set to `null`.
pub(super) fn not_null<T>(field: &str, value: Option<Option<T>>) -> ApiResult<Option<T>> {
    match value {
        Some(None) => Err(ApiError::invalid(field, "must not be null")),
        Some(Some(v)) => Ok(Some(v)),
        None => Ok(None),
    }
}

fn validate_steps(input: Vec<StepInput>) -> ApiResult<Vec<Step>> {
    if input.is_empty() {
        return Err(ApiError::invalid("steps", "must contain at least one step"));
    }
    if input.len() > MAX_STEPS {
        return Err(ApiError::invalid("steps", format!("must contain at most {MAX_STEPS} steps")));
    }
    let given_ids = input.iter().filter(|s| s.id.is_some()).count();
    if given_ids != 0 && given_ids != input.len() {
        let i = input.iter().position(|s| s.id.is_none()).unwrap_or(0);
        return Err(ApiError::invalid(format!("steps[{i}].id"), "give an id for every step or for none"));
    }
    let mut steps: Vec<Step> = Vec::with_capacity(input.len());
    for (i, s) in input.into_iter().enumerate() {
        let content = s.content.trim();
        if content.is_empty() {
            return Err(ApiError::invalid(format!("steps[{i}].content"), "must not be empty"));
        }
        if content.chars().count() > MAX_STEP_CONTENT {
            return Err(ApiError::invalid(
                format!("steps[{i}].content"),
                format!("must be at most {MAX_STEP_CONTENT} characters"),
            ));
        }
        let id = match s.id {
            Some(id) => {
                let id = validate::required_text(&format!("steps[{i}].id"), &id, MAX_STEP_ID)?;
                if steps.iter().any(|prev| prev.id == id) {
                    return Err(ApiError::invalid(format!("steps[{i}].id"), format!("duplicate step id '{id}'")));
                }
                id
            }
            None => (i + 1).to_string(),
        };
        // `{}` says nothing; stored as absent so reads match what a client would expect.
        let next = s.next.filter(|n| !n.is_empty());
        steps.push(Step { id, step_type: s.step_type, content: content.to_owned(), next });
    }
    validate_branches(&steps)?;
    Ok(steps)
}

/// Every `next` target names a step of the same template.
fn validate_branches(steps: &[Step]) -> ApiResult<()> {
    for (i, step) in steps.iter().enumerate() {
        let Some(next) = &step.next else { continue };
        for (answer, target) in next.targets() {
            if !steps.iter().any(|s| s.id == target) {
                return Err(ApiError::invalid(
                    format!("steps[{i}].next.{answer}"),
                    format!("no step has id '{target}'"),
                ));
            }
        }
    }
    Ok(())
}

fn validate_variables(variables: Vec<String>) -> ApiResult<Vec<String>> {
    if variables.len() > MAX_VARIABLES {
        return Err(ApiError::invalid("variables", format!("at most {MAX_VARIABLES} variables")));
    }
    let mut out: Vec<String> = Vec::with_capacity(variables.len());
    for v in variables {
        if !is_variable_name(&v) {
            return Err(ApiError::invalid(
                "variables",
                format!("'{v}' is not a variable name (letters, digits and '_', not starting with a digit)"),
            ));
        }
        if out.contains(&v) {
            return Err(ApiError::invalid("variables", format!("'{v}' is listed twice")));
        }
        out.push(v);
    }
    Ok(out)
}

/// The `{placeholders}` of all steps and of the voicemail message, in order of first appearance.
fn step_placeholders(steps: &[Step], voicemail_message: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let texts = steps.iter().map(|s| s.content.as_str()).chain(voicemail_message);
    for name in texts.flat_map(placeholders) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn optional(field: &str, value: Option<String>, max: usize) -> ApiResult<Option<String>> {
    Ok(value.map(|v| validate::optional_text(field, &v, max)).transpose()?.flatten())
}

#[utoipa::path(post, path = "/templates", tag = "templates", request_body = CreateTemplate,
    responses((status = 201, description = "Template created", body = Template), ErrorResponses),
    security(("bearer" = [])))]
async fn create_template(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiJson(body): ApiJson<CreateTemplate>,
) -> ApiResult<(StatusCode, Json<Template>)> {
    let name = validate::required_text("name", &body.name, 200)?;
    let description = optional("description", body.description, 1000)?;
    let industry = optional("industry", body.industry, 100)?;
    let steps = validate_steps(body.steps)?;
    let voicemail_message = optional("voicemailMessage", body.voicemail_message, MAX_STEP_CONTENT)?;
    let variables = match body.variables {
        Some(v) => validate_variables(v)?,
        None => step_placeholders(&steps, voicemail_message.as_deref()),
    };
    let fields = TemplateFields { name, description, industry, steps, variables, voicemail_message };
    let template = templates::create(&state.db, &who.account_id, fields).await?;
    Ok((StatusCode::CREATED, Json(template)))
}

#[utoipa::path(get, path = "/templates/{id}", tag = "templates",
    params(("id" = String, Path, description = "Template id")),
    responses((status = 200, body = Template), ErrorResponses),
    security(("bearer" = [])))]
async fn get_template(State(state): State<AppState>, Auth(who): Auth, PathId(id): PathId) -> ApiResult<Json<Template>> {
    let template = templates::get(&state.db, &who.account_id, &id).await?.ok_or(ApiError::not_found("Template"))?;
    Ok(Json(template))
}

#[utoipa::path(get, path = "/templates", tag = "templates",
    params(
        ("industry" = Option<String>, Query, description = "Only templates of this industry (case-insensitive)"),
        ("search" = Option<String>, Query, description = "Case-insensitive match on name or description"),
        ("page" = Option<i64>, Query, minimum = 1, description = "Page number (default 1)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Results per page (default 20, max 100)"),
    ),
    responses((status = 200, body = Paginated<TemplateSummary>), ErrorResponses),
    security(("bearer" = [])))]
async fn list_templates(
    State(state): State<AppState>,
    Auth(who): Auth,
    q: QueryParams,
) -> ApiResult<Json<Paginated<TemplateSummary>>> {
    let page = q.page()?;
    let filter =
        ListFilter { industry: q.get("industry").map(str::to_owned), search: q.get("search").map(str::to_owned) };
    let result = templates::list(&state.db, &who.account_id, &filter, page).await?;
    Ok(Json(Paginated::new(result, page)))
}

#[utoipa::path(patch, path = "/templates/{id}", tag = "templates", request_body = UpdateTemplate,
    params(("id" = String, Path, description = "Template id")),
    responses((status = 200, body = Template), ErrorResponses),
    security(("bearer" = [])))]
async fn update_template(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<UpdateTemplate>,
) -> ApiResult<Json<Template>> {
    let patch = TemplatePatch {
        name: not_null("name", body.name)?.map(|n| validate::required_text("name", &n, 200)).transpose()?,
        description: body.description.map(|d| optional("description", d, 1000)).transpose()?,
        industry: body.industry.map(|i| optional("industry", i, 100)).transpose()?,
        steps: not_null("steps", body.steps)?.map(validate_steps).transpose()?,
        variables: not_null("variables", body.variables)?.map(validate_variables).transpose()?,
        voicemail_message: body
            .voicemail_message
            .map(|m| optional("voicemailMessage", m, MAX_STEP_CONTENT))
            .transpose()?,
    };
    let template =
        templates::update(&state.db, &who.account_id, &id, patch).await?.ok_or(ApiError::not_found("Template"))?;
    Ok(Json(template))
}

#[utoipa::path(delete, path = "/templates/{id}", tag = "templates",
    params(("id" = String, Path, description = "Template id")),
    responses(
        (status = 204, description = "Template deleted; calls made with it keep their templateId. While a scheduled, \
active or paused campaign or an inbound phone number uses it, the answer is 409 `conflict` naming them in \
`details.campaignIds` and `details.phoneNumberIds`"),
        ErrorResponses
    ),
    security(("bearer" = [])))]
async fn delete_template(State(state): State<AppState>, Auth(who): Auth, PathId(id): PathId) -> ApiResult<StatusCode> {
    match templates::delete(&state.db, &who.account_id, &id).await? {
        DeleteOutcome::Deleted => Ok(StatusCode::NO_CONTENT),
        DeleteOutcome::NotFound => Err(ApiError::not_found("Template")),
        DeleteOutcome::InUse { campaign_ids, phone_number_ids } => {
            let (mut users, mut remedies) = (Vec::new(), Vec::new());
            if !campaign_ids.is_empty() {
                users.push(format!("{} scheduled, active or paused campaign(s)", campaign_ids.len()));
                remedies.push("complete or cancel the campaigns");
            }
            if !phone_number_ids.is_empty() {
                users.push(format!("{} inbound phone number(s)", phone_number_ids.len()));
                remedies.push("point the numbers at another template or delete them");
            }
            Err(ApiError::Conflict {
                message: format!("Template is used by {}; {} first", users.join(" and "), remedies.join(" and ")),
                details: json!({"campaignIds": campaign_ids, "phoneNumberIds": phone_number_ids}),
            })
        }
    }
}
