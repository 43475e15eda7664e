//! The administrator's pages — extensions (enable, order, configuration with its errors shown
//! inline, compliance marking), users with their roles and passwords — and every user's own
//! password.

use super::WebState;
use super::error::PageError;
use super::session::Viewer;
use super::view::Nav;
use crate::approvals::{ApprovalError, ExtensionUpdate, NewUser};
use crate::domain::actor::Role;
use crate::domain::directory::User;
use crate::store::extensions::ExtensionSetting;
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

struct ExtensionRow {
    setting: ExtensionSetting,
    config: String,
    error: String,
}

#[derive(Template)]
#[template(path = "admin_extensions.html")]
struct ExtensionsPage {
    nav: Nav,
    rows: Vec<ExtensionRow>,
}

async fn extensions_page(
    s: &WebState,
    v: &Viewer,
    failed: Option<(&str, String, String)>,
) -> Result<ExtensionsPage, PageError> {
    let rows = s
        .approvals
        .extensions(&v.principal)
        .await?
        .into_iter()
        .map(|setting| {
            let mine = failed.as_ref().filter(|(name, _, _)| *name == setting.name);
            ExtensionRow {
                config: mine
                    .map(|(_, typed, _)| typed.clone())
                    .unwrap_or_else(|| serde_json::to_string_pretty(&setting.config).unwrap_or_default()),
                error: mine.map(|(_, _, e)| e.clone()).unwrap_or_default(),
                setting,
            }
        })
        .collect();
    Ok(ExtensionsPage { nav: v.nav("extensions"), rows })
}

/// `GET /admin/extensions`.
pub async fn extensions(State(s): State<WebState>, v: Viewer) -> Result<Html<String>, PageError> {
    Ok(Html(extensions_page(&s, &v, None).await?.render()?))
}

/// One extension's settings form.
#[derive(Debug, Deserialize)]
pub struct ExtensionForm {
    csrf: String,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    compliance: Option<String>,
    #[serde(default)]
    upgrade: Option<String>,
    position: String,
    config: String,
    /// Plugins only: the origins it may call, one per line.
    #[serde(default)]
    http: Option<String>,
    /// Plugins only: whether it may send e-mail.
    #[serde(default)]
    mail: Option<String>,
}

impl ExtensionForm {
    /// The configuration (a JSON object) and position typed, or what is wrong with them.
    fn settings(&self) -> Result<(serde_json::Value, i64), String> {
        let config = match serde_json::from_str::<serde_json::Value>(&self.config) {
            Ok(c) if c.is_object() => c,
            Ok(_) => return Err("the configuration must be a JSON object, e.g. {}".into()),
            Err(e) => return Err(format!("the configuration is not valid JSON: {e}")),
        };
        let position =
            self.position.trim().parse::<i64>().map_err(|_| "the position must be a whole number".to_string())?;
        Ok((config, position))
    }

    /// A plugin's grants: its form carries an `http` field (even empty); a script's has none.
    fn grants(&self) -> Option<crate::approvals::Grants> {
        self.http.as_ref().map(|origins| crate::approvals::Grants {
            http: origins.lines().map(str::trim).filter(|o| !o.is_empty()).map(String::from).collect(),
            mail: self.mail.is_some(),
        })
    }
}

/// The extensions page again, with the form as sent and what was wrong beside it (422).
async fn refused(
    s: &WebState,
    v: &Viewer,
    name: &str,
    f: &ExtensionForm,
    message: String,
) -> Result<Response, PageError> {
    let page = extensions_page(s, v, Some((name, f.config.clone(), message))).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response())
}

#[derive(Template)]
#[template(path = "admin_simulation.html")]
struct SimulationPage {
    nav: Nav,
    name: String,
    report: crate::approvals::SimulationReport,
}

/// `POST /admin/extensions/{name}/try`: the form's settings tried on the 500 newest orders
/// before they are saved (nothing is saved); the page lists what would change.
pub async fn try_extension(
    State(s): State<WebState>,
    v: Viewer,
    Path(name): Path<String>,
    Form(f): Form<ExtensionForm>,
) -> Result<Response, PageError> {
    v.check(&f.csrf)?;
    let (config, position) = match f.settings() {
        Ok(v) => v,
        Err(message) => return refused(&s, &v, &name, &f, message).await,
    };
    let change = crate::approvals::CandidateChange {
        extension: name.clone(),
        enabled: Some(f.enabled.is_some()),
        position: Some(position),
        config: Some(config),
        source: None,
        code_hash: None,
    };
    match s.approvals.simulate(&v.principal, vec![change], crate::approvals::OrderSelection::default()).await {
        Ok(report) => Ok(Html(SimulationPage { nav: v.nav("extensions"), name, report }.render()?).into_response()),
        Err(ApprovalError::Invalid { message, .. }) => refused(&s, &v, &name, &f, message).await,
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/extensions/{name}`: saves the settings; a configuration that is not a JSON
/// object, or that the extension refuses, is shown again with the error beside it.
pub async fn update_extension(
    State(s): State<WebState>,
    v: Viewer,
    Path(name): Path<String>,
    Form(f): Form<ExtensionForm>,
) -> Result<Response, PageError> {
    v.check(&f.csrf)?;
    let (config, position) = match f.settings() {
        Ok(v) => v,
        Err(message) => return refused(&s, &v, &name, &f, message).await,
    };
    let grants = f.grants();
    let update = ExtensionUpdate {
        enabled: f.enabled.is_some(),
        position: Some(position),
        config: Some(config),
        grants,
        compliance: Some(f.compliance.is_some()),
        upgrade: f.upgrade.is_some(),
    };
    match s.approvals.update_extension(&v.principal, &name, update).await {
        Ok(_) => Ok(Redirect::to(&format!("/admin/extensions#ext-{name}")).into_response()),
        Err(ApprovalError::Invalid { message, .. }) => refused(&s, &v, &name, &f, message).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    nav: Nav,
    users: Vec<(User, bool)>,
    roles: Vec<&'static str>,
    error: String,
    done: String,
}

async fn users_page(s: &WebState, v: &Viewer, error: String, done: String) -> Result<UsersPage, PageError> {
    let users = s.approvals.users(&v.principal, "", 500).await?;
    Ok(UsersPage { nav: v.nav("users"), users, roles: crate::domain::actor::roles::ALL.to_vec(), error, done })
}

/// `GET /admin/users`.
pub async fn users(State(s): State<WebState>, v: Viewer) -> Result<Html<String>, PageError> {
    Ok(Html(users_page(&s, &v, String::new(), String::new()).await?.render()?))
}

/// `POST /admin/users`: a new user with roles and an initial password.
pub async fn create_user(
    State(s): State<WebState>,
    v: Viewer,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    v.check(&get("csrf"))?;
    let refused = |message: String| async {
        let page = users_page(&s, &v, message, String::new()).await?;
        Ok::<_, PageError>((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response())
    };
    let mut roles = Vec::new();
    for (_, r) in fields.iter().filter(|(f, _)| f == "role") {
        match r.parse::<Role>() {
            Ok(role) => roles.push(role),
            Err(e) => return refused(e.to_string()).await,
        }
    }
    let name = get("name");
    let password = get("password");
    if let Err(m) = crate::domain::session::check_password(&password) {
        return refused(format!("password: {m}")).await;
    }
    let mut user = NewUser::with_roles(&name, roles);
    user.email = Some(get("email")).filter(|e| !e.is_empty());
    match s.approvals.create_user(&v.principal, user).await {
        Ok(_) => {}
        Err(ApprovalError::Invalid { field, message }) => return refused(format!("{field}: {message}")).await,
        Err(ApprovalError::Conflict(m)) => return refused(m).await,
        Err(e) => return Err(e.into()),
    }
    s.approvals.set_password(&v.principal, &name, &password).await?;
    let page = users_page(&s, &v, String::new(), format!("{name} can now sign in")).await?;
    Ok((StatusCode::CREATED, Html(page.render()?)).into_response())
}

/// A new password.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    csrf: String,
    password: String,
}

/// `POST /admin/users/{name}/password`: an admin sets a user's password (ending their sessions).
pub async fn set_password(
    State(s): State<WebState>,
    v: Viewer,
    Path(name): Path<String>,
    Form(f): Form<PasswordForm>,
) -> Result<Response, PageError> {
    v.check(&f.csrf)?;
    match s.approvals.set_password(&v.principal, &name, &f.password).await {
        Ok(()) => {
            let page = users_page(&s, &v, String::new(), format!("the password of {name} was set")).await?;
            Ok(Html(page.render()?).into_response())
        }
        Err(ApprovalError::Invalid { message, .. }) => {
            let page = users_page(&s, &v, format!("{name}: {message}"), String::new()).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "password.html")]
struct OwnPasswordPage {
    nav: Nav,
    error: String,
}

/// `GET /password`: change one's own password.
pub async fn password_page(v: Viewer) -> Result<Html<String>, PageError> {
    Ok(Html(OwnPasswordPage { nav: v.nav("password"), error: String::new() }.render()?))
}

/// One's own new password, with the current one.
#[derive(Debug, Deserialize)]
pub struct OwnPasswordForm {
    csrf: String,
    current: String,
    password: String,
}

/// `POST /password`.
pub async fn change_password(
    State(s): State<WebState>,
    v: Viewer,
    Form(f): Form<OwnPasswordForm>,
) -> Result<Response, PageError> {
    v.check(&f.csrf)?;
    match s.approvals.change_own_password(&v.principal, &f.current, &f.password).await {
        // Setting a password ends every session of the user, this one too.
        Ok(()) => Ok(Redirect::to("/sign-in").into_response()),
        Err(ApprovalError::Invalid { message, .. }) => {
            let page = OwnPasswordPage { nav: v.nav("password"), error: message };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

struct CostCenterRow {
    code: String,
    manager: String,
    budget: String,
}

#[derive(Template)]
#[template(path = "admin_cost_centers.html")]
struct CostCentersPage {
    nav: Nav,
    rows: Vec<CostCenterRow>,
    error: String,
}

async fn cost_centers_page(s: &WebState, v: &Viewer, error: String) -> Result<CostCentersPage, PageError> {
    let rows = s
        .approvals
        .cost_centers(&v.principal)
        .await?
        .into_iter()
        .map(|c| CostCenterRow {
            budget: c.budget_minor.map(|b| b.to_string()).unwrap_or_default(),
            code: c.code,
            manager: c.manager,
        })
        .collect();
    Ok(CostCentersPage { nav: v.nav("cost-centers"), rows, error })
}

/// `GET /admin/cost-centers`.
pub async fn cost_centers(State(s): State<WebState>, v: Viewer) -> Result<Html<String>, PageError> {
    Ok(Html(cost_centers_page(&s, &v, String::new()).await?.render()?))
}

/// A new cost center.
#[derive(Debug, Deserialize)]
pub struct CostCenterForm {
    csrf: String,
    code: String,
    manager: String,
    #[serde(default)]
    budget_minor: String,
}

/// `POST /admin/cost-centers`.
pub async fn create_cost_center(
    State(s): State<WebState>,
    v: Viewer,
    Form(f): Form<CostCenterForm>,
) -> Result<Response, PageError> {
    v.check(&f.csrf)?;
    let refuse = |message: String| async {
        let page = cost_centers_page(&s, &v, message).await?;
        Ok::<_, PageError>((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response())
    };
    let budget_minor = match f.budget_minor.trim() {
        "" => None,
        b => match b.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => return refuse("budget_minor: a whole number of minor units, e.g. 1000000".into()).await,
        },
    };
    let body = crate::approvals::NewCostCenter {
        code: f.code.trim().to_string(),
        manager: f.manager.trim().to_string(),
        budget_minor,
    };
    match s.approvals.create_cost_center(&v.principal, body).await {
        Ok(_) => Ok(Redirect::to("/admin/cost-centers").into_response()),
        Err(ApprovalError::Invalid { field, message }) => refuse(format!("{field}: {message}")).await,
        Err(ApprovalError::Conflict(m)) => refuse(m).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "admin_settings.html")]
struct SettingsPage {
    nav: Nav,
    one_stage_per_person: bool,
    saved: bool,
}

/// `GET /admin/settings`.
pub async fn settings(State(s): State<WebState>, v: Viewer) -> Result<Html<String>, PageError> {
    let policy = s.approvals.settings(&v.principal)?;
    let page = SettingsPage { nav: v.nav("settings"), one_stage_per_person: policy.one_stage_per_person, saved: false };
    Ok(Html(page.render()?))
}

/// The tenant's settings form.
#[derive(Debug, Deserialize)]
pub struct SettingsForm {
    csrf: String,
    #[serde(default)]
    one_stage_per_person: Option<String>,
}

/// `POST /admin/settings`.
pub async fn save_settings(
    State(s): State<WebState>,
    v: Viewer,
    Form(f): Form<SettingsForm>,
) -> Result<Html<String>, PageError> {
    v.check(&f.csrf)?;
    let update = crate::approvals::SettingsUpdate {
        one_stage_per_person: Some(f.one_stage_per_person.is_some()),
        dormant_after_days: None,
        second_factor_roles: None,
        step_up_above_minor: None,
    };
    let policy = s.approvals.update_settings(&v.principal, update).await?;
    let page = SettingsPage { nav: v.nav("settings"), one_stage_per_person: policy.one_stage_per_person, saved: true };
    Ok(Html(page.render()?))
}

#[derive(Template)]
#[template(path = "admin_deliveries.html")]
struct DeliveriesPage {
    nav: Nav,
    rows: Vec<crate::approvals::Delivery>,
    done: String,
}

/// `GET /admin/deliveries`: notifications and ERP exports that failed or are dead.
pub async fn deliveries(State(s): State<WebState>, v: Viewer) -> Result<Html<String>, PageError> {
    let rows = s.approvals.deliveries(&v.principal, crate::approvals::Listing::Troubled, 200, None).await?;
    Ok(Html(DeliveriesPage { nav: v.nav("deliveries"), rows, done: String::new() }.render()?))
}

/// `POST /admin/deliveries/{id}/retry`: re-drives a delivery now, with fresh attempts.
pub async fn redrive(
    State(s): State<WebState>,
    v: Viewer,
    Path(id): Path<String>,
    Form(f): Form<super::session::TokenForm>,
) -> Result<Html<String>, PageError> {
    v.check(&f.csrf)?;
    let d = s.approvals.redrive(&v.principal, &id).await?;
    let rows = s.approvals.deliveries(&v.principal, crate::approvals::Listing::Troubled, 200, None).await?;
    let done = format!("delivery {} to {} will be tried again now", d.id, d.channel);
    Ok(Html(DeliveriesPage { nav: v.nav("deliveries"), rows, done }.render()?))
}
