//! Test fixture: a connector that reads a customer profile from `{base_url}/customers/{id}`.
use greenlight_plugin_api::*;
/// The connector.
pub struct Fetch;
impl Connector for Fetch {
    fn customer(id: String) -> Result<CustomerProfile, ConnectorError> {
        let base = host::config().get("base_url").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let resp = http::get(&format!("{base}/customers/{id}")).map_err(|e| match e {
            http::HttpError::Denied(m) => ConnectorError::Rejected(format!("denied: {m}")),
            http::HttpError::Timeout => ConnectorError::Unavailable("timeout".into()),
            other => ConnectorError::Unavailable(format!("{other:?}")),
        })?;
        if resp.status != 200 {
            return Err(ConnectorError::NotFound(format!("status {}", resp.status)));
        }
        let name = String::from_utf8_lossy(&resp.body).trim().to_string();
        Ok(CustomerProfile {
            id,
            name,
            email: None,
            phone: None,
            credit_limit_minor: None,
            currency: None,
            account_manager: None,
        })
    }
}
export_connector!(Fetch);
