//! Order input rules, sums that never wrap, and the facts reports read.
use super::*;
use crate::domain::fixtures::{input, line};

#[test]
fn id_floors_order_like_the_ids_of_their_time() {
    let t = Utc::now();
    let id = uuid::Uuid::now_v7().to_string();
    assert!(id_floor(t - chrono::TimeDelta::seconds(1)) <= id);
    assert!(id_floor(t + chrono::TimeDelta::seconds(1)) > id);
    assert_eq!(id_floor(DateTime::<Utc>::UNIX_EPOCH), "00000000-0000-0000-0000-000000000000");
}

#[test]
fn subtotal_sums_lines() {
    assert_eq!(input(vec![line(2, 150), line(1, 5)]).validate(), Ok(305));
}

#[test]
fn refuses_bad_lines_naming_the_field() {
    assert_eq!(input(vec![]).validate().map_err(|e| e.field), Err("lines".into()));
    assert_eq!(input(vec![line(1, 1), line(0, 1)]).validate().map_err(|e| e.field), Err("lines[1].quantity".into()));
    assert_eq!(input(vec![line(-3, 1)]).validate().map_err(|e| e.field), Err("lines[0].quantity".into()));
    assert_eq!(input(vec![line(1, -1)]).validate().map_err(|e| e.field), Err("lines[0].unit_price_minor".into()));
    assert!(input(vec![line(MAX_QUANTITY, i64::MAX / 2)]).validate().is_err());
}

#[test]
fn amounts_beyond_the_largest_are_refused_naming_the_field() {
    let field = |lines| input(lines).validate().map_err(|e| e.field);
    assert_eq!(field(vec![line(1, MAX_AMOUNT_MINOR)]), Ok(MAX_AMOUNT_MINOR));
    assert_eq!(field(vec![line(1, MAX_AMOUNT_MINOR + 1)]), Err("lines[0].unit_price_minor".into()));
    assert_eq!(field(vec![line(1, 5_000_000_000_000_000_000)]), Err("lines[0].unit_price_minor".into()));
    assert_eq!(field(vec![line(2, MAX_AMOUNT_MINOR / 2 + 1)]), Err("lines[0].unit_price_minor".into()));
    assert_eq!(field(vec![line(1, MAX_AMOUNT_MINOR), line(1, 1)]), Err("lines".into()));
}

#[test]
fn deep_attributes_are_refused_at_the_door() {
    let nested = |depth: usize| {
        let mut v = serde_json::json!(1);
        for _ in 0..depth {
            v = serde_json::json!({ "a": v });
        }
        v
    };
    let mut ok = input(vec![line(1, 1)]);
    ok.attributes.insert("x".into(), nested(MAX_JSON_DEPTH - 1));
    assert!(ok.validate().is_ok());
    let mut deep = input(vec![line(1, 1)]);
    deep.attributes.insert("x".into(), nested(MAX_JSON_DEPTH));
    assert_eq!(deep.validate().map_err(|e| e.field), Err("attributes".into()));
    assert_eq!(json_depth(&serde_json::json!([[1], {"a": {}}])), 3);
}

#[test]
fn sums_of_a_stored_order_never_wrap() {
    let mut o = Order::new_draft("o".into(), "r".into(), input(vec![line(1, 10)]), 10, Utc::now());
    let adj = |kind, amount_minor| PriceAdjustment {
        kind,
        code: "X".into(),
        amount_minor,
        description: None,
        source: String::new(),
    };
    o.adjustments =
        vec![adj(PriceKind::Tax, Minor::MAX), adj(PriceKind::Tax, Minor::MAX), adj(PriceKind::Discount, -5)];
    assert_eq!(o.tax_minor(), MAX_AMOUNT_MINOR);
    assert_eq!(o.total_minor(), MAX_AMOUNT_MINOR);
    o.adjustments = vec![adj(PriceKind::Tax, 3), adj(PriceKind::Discount, -5)];
    assert_eq!((o.tax_minor(), o.total_minor()), (3, 8));
}

#[test]
fn recurrence_periods() {
    for ok in ["P1M", "P1Y", "P2W", "P30D", "P12M"] {
        assert!(Recurrence { interval: ok.into() }.validate().is_ok(), "{ok}");
    }
    for bad in ["1M", "P", "PM", "P0M", "P1H", "P1.5M", "P12345M", "p1m"] {
        assert!(Recurrence { interval: bad.into() }.validate().is_err(), "{bad}");
    }
}

#[test]
fn patch_replaces_and_clears() {
    let mut base = input(vec![line(1, 1)]);
    base.cost_center = Some("CC".into());
    let patch: OrderPatch = serde_json::from_str(r#"{"cost_center":null,"department":"IT"}"#).expect("valid patch");
    let out = patch.apply_to(base);
    assert_eq!(out.cost_center, None);
    assert_eq!(out.department.as_deref(), Some("IT"));
    assert!(serde_json::from_str::<OrderPatch>(r#"{"colour":"red"}"#).is_err());
}
