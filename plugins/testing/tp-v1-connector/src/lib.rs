//! Test fixture: a connector built straight from the frozen WIT of plugin API 1.0.0. It knows one
//! customer without asking anyone, and exports every order as `V1-{id}`. A 1.1 host must run its
//! calls unchanged, and know that it cannot update credit (1.0 has no such call).

#[allow(missing_docs, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({ path: "../../../plugin-api/wit/deps/greenlight-plugin-1.0.0", world: "connector" });
}

use bindings::exports::greenlight::plugin::connector_api::Guest;
use bindings::greenlight::plugin::types::{
    Budget, ConnectorError, CustomerProfile, ExportResult, OpenInvoice, OrderContext,
};

struct V1Connector;

impl Guest for V1Connector {
    fn customer(id: String) -> Result<CustomerProfile, ConnectorError> {
        if id != "C-1" {
            return Err(ConnectorError::NotFound(format!("no customer {id}")));
        }
        Ok(CustomerProfile {
            id,
            name: "Acme (API 1.0)".into(),
            email: None,
            phone: None,
            credit_limit_minor: Some(100_000),
            currency: Some("EUR".into()),
            account_manager: None,
        })
    }

    fn open_invoices(_id: String) -> Result<Vec<OpenInvoice>, ConnectorError> {
        Ok(Vec::new())
    }

    fn budgets(_ctx: OrderContext) -> Result<Vec<Budget>, ConnectorError> {
        Ok(Vec::new())
    }

    fn export_order(ctx: OrderContext) -> Result<ExportResult, ConnectorError> {
        Ok(ExportResult { external_id: format!("V1-{}", ctx.order.id), message: None })
    }
}

bindings::export!(V1Connector with_types_in bindings);
