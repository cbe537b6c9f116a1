//! The collaboration domain: statuses and the lifecycle rules between them.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Where a collaboration stands. Mirrors the Postgres enum `collab_status`.
/// Read case-insensitively (`"Pending"` is `pending`), written in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "collab_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum CollabStatus {
    Pending,
    Negotiating,
    Fulfilling,
    Completed,
    Cancelled,
}

impl CollabStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [CollabStatus; 5] = [
        CollabStatus::Pending,
        CollabStatus::Negotiating,
        CollabStatus::Fulfilling,
        CollabStatus::Completed,
        CollabStatus::Cancelled,
    ];

    /// The spelling used in the database, the admin protocol and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            CollabStatus::Pending => "pending",
            CollabStatus::Negotiating => "negotiating",
            CollabStatus::Fulfilling => "fulfilling",
            CollabStatus::Completed => "completed",
            CollabStatus::Cancelled => "cancelled",
        }
    }

    /// Completed and cancelled collaborations never change again.
    pub fn is_final(self) -> bool {
        matches!(self, CollabStatus::Completed | CollabStatus::Cancelled)
    }

    /// The statuses reachable in one step: the next stage, and cancellation while open.
    pub fn next_states(self) -> Vec<CollabStatus> {
        let forward = match self {
            CollabStatus::Pending => Some(CollabStatus::Negotiating),
            CollabStatus::Negotiating => Some(CollabStatus::Fulfilling),
            CollabStatus::Fulfilling => Some(CollabStatus::Completed),
            CollabStatus::Completed | CollabStatus::Cancelled => None,
        };
        let cancel = (!self.is_final()).then_some(CollabStatus::Cancelled);
        forward.into_iter().chain(cancel).collect()
    }

    /// Whether `self → to` is a legal move.
    pub fn can_move_to(self, to: CollabStatus) -> bool {
        self.next_states().contains(&to)
    }
}

impl std::fmt::Display for CollabStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for CollabStatus {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl std::str::FromStr for CollabStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CollabStatus::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown status {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::CollabStatus::{self, *};

    #[test]
    fn lifecycle_moves_forward_or_cancels() {
        assert!(Pending.can_move_to(Negotiating));
        assert!(Negotiating.can_move_to(Fulfilling));
        assert!(Fulfilling.can_move_to(Completed));
        assert!(!Pending.can_move_to(Fulfilling));
        assert!(!Negotiating.can_move_to(Pending));
        for open in [Pending, Negotiating, Fulfilling] {
            assert!(open.can_move_to(Cancelled));
        }
        for done in [Completed, Cancelled] {
            assert!(done.next_states().is_empty());
        }
        assert_eq!("Fulfilling".parse::<CollabStatus>(), Ok(Fulfilling));
        assert!("done".parse::<CollabStatus>().is_err());
    }
}

/// Post types a deliverable may name. A table: add a platform's format by adding a line.
pub const POST_TYPES: &[&str] = &[
    "tiktok_video",
    "tiktok_story",
    "instagram_reel",
    "instagram_post",
    "instagram_story",
    "instagram_carousel",
    "youtube_short",
    "youtube_video",
    "youtube_integration",
    "twitch_stream",
    "x_post",
    "linkedin_post",
    "pinterest_pin",
    "snapchat_story",
    "blog_post",
    "podcast_mention",
    "ugc_video",
];

/// Active ISO 4217 currency codes.
const CURRENCIES: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND \
BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR \
FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS \
KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN \
MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG \
SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS \
VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";

/// What an entry of a collaboration's audit trail records. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The collaboration was created (from a reply, by hand, by a re-match or undecline).
    Created,
    /// Its status moved.
    Status,
    /// The creator declined.
    Declined,
    /// An operator replaced its terms.
    TermsUpdated,
    /// A message joined it (written by early versions).
    Message,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Status => "status",
            EventKind::Declined => "declined",
            EventKind::TermsUpdated => "terms_updated",
            EventKind::Message => "message",
        }
    }

    /// The kind a stored name means; `None` for a name no version of collabd writes.
    pub fn parse(s: &str) -> Option<EventKind> {
        use EventKind::*;
        [Created, Status, Declined, TermsUpdated, Message].into_iter().find(|k| k.as_str() == s)
    }
}

/// One thing the creator will publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deliverable {
    pub post_type: String,
    pub quantity: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub talking_points: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hashtags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attribution_keywords: Vec<String>,
}

/// An amount in a currency: a decimal, never a float, with no more decimals than the
/// currency's minor unit (ISO 4217: 2 for USD, 0 for JPY, 3 for KWD). On the wire and in
/// the database the amount is a string in the currency's minor units (`"500.00"`); a JSON
/// number is read too (what earlier versions wrote).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    pub amount: Decimal,
    pub currency: String,
}

impl Money {
    /// The amount written with exactly the currency's minor units (`500` USD → `500.00`).
    pub fn in_minor_units(&self) -> Money {
        let mut amount = self.amount;
        amount.rescale(minor_units(&self.currency));
        Money { amount, currency: self.currency.clone() }
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.in_minor_units().amount, self.currency)
    }
}

/// How the creator is paid: any combination, at least one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compensation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_fee: Option<Money>,
    /// A share of sales, as a decimal percentage (`12.5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commission_percent: Option<Decimal>,
    /// Gifted product, described in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
}

impl Compensation {
    fn is_empty(&self) -> bool {
        self.fixed_fee.is_none() && self.commission_percent.is_none() && self.product.is_none()
    }
}

/// A dated milestone ("draft", "publish", …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deadline {
    #[serde(default = "default_deadline_label")]
    pub what: String,
    pub date: chrono::NaiveDate,
}

fn default_deadline_label() -> String {
    "deliver".into()
}

/// When things are due.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeline {
    #[serde(default)]
    pub deadlines: Vec<Deadline>,
}

/// The negotiable terms of a collaboration: what `collab create` and `collab update` set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    #[serde(default)]
    pub deliverables: Vec<Deliverable>,
    #[serde(default)]
    pub compensation: Compensation,
    #[serde(default)]
    pub timeline: Timeline,
    #[serde(default)]
    pub additional_terms: Option<String>,
}

impl Terms {
    /// The same terms with every amount written in its currency's minor units, as they
    /// are stored and shown.
    pub fn in_minor_units(mut self) -> Terms {
        if let Some(fee) = &mut self.compensation.fixed_fee {
            *fee = fee.in_minor_units();
        }
        self
    }
}

/// A rule a set of terms breaks, naming the field so a client can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidTerms {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> InvalidTerms {
    InvalidTerms { field: field.into(), message: message.into() }
}

impl Terms {
    /// Checks post types, quantities, compensation and amounts before anything is stored.
    pub fn validate(&self) -> Result<(), InvalidTerms> {
        for (i, d) in self.deliverables.iter().enumerate() {
            if !POST_TYPES.contains(&d.post_type.as_str()) {
                return Err(invalid(
                    format!("deliverables[{i}].post_type"),
                    format!(
                        "unknown post type {:?}; known: {}",
                        d.post_type,
                        POST_TYPES.join(", ")
                    ),
                ));
            }
            if d.quantity < 1 {
                return Err(invalid(format!("deliverables[{i}].quantity"), "must be at least 1"));
            }
        }
        let c = &self.compensation;
        if c.is_empty() {
            return Err(invalid(
                "compensation",
                "give at least one of fixed_fee, commission_percent or product",
            ));
        }
        if let Some(fee) = &c.fixed_fee {
            if fee.amount.is_sign_negative() && !fee.amount.is_zero() {
                return Err(invalid("compensation.fixed_fee.amount", "must be a number ≥ 0"));
            }
            if !is_currency(&fee.currency) {
                return Err(invalid(
                    "compensation.fixed_fee.currency",
                    format!("{:?} is not an ISO 4217 currency code", fee.currency),
                ));
            }
            let units = minor_units(&fee.currency);
            if fee.amount.normalize().scale() > units {
                return Err(invalid(
                    "compensation.fixed_fee.amount",
                    format!("{} takes {units} decimal(s) at most", fee.currency),
                ));
            }
        }
        if let Some(p) = c.commission_percent
            && !(Decimal::ZERO..=Decimal::ONE_HUNDRED).contains(&p)
        {
            return Err(invalid("compensation.commission_percent", "must be between 0 and 100"));
        }
        if c.product.as_deref().is_some_and(|p| p.trim().is_empty()) {
            return Err(invalid("compensation.product", "must not be empty"));
        }
        Ok(())
    }
}

/// The decimals of a currency's minor unit (ISO 4217's exponent): 2 unless listed.
pub fn minor_units(code: &str) -> u32 {
    match code {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

/// Whether `code` is an active ISO 4217 code (upper case, as stored).
pub fn is_currency(code: &str) -> bool {
    code.len() == 3 && CURRENCIES.split_whitespace().any(|c| c == code)
}

#[cfg(test)]
mod terms_tests {
    use super::*;

    fn terms() -> Terms {
        Terms {
            deliverables: vec![Deliverable {
                post_type: "tiktok_video".into(),
                quantity: 2,
                talking_points: vec![],
                hashtags: vec!["#ad".into()],
                attribution_keywords: vec![],
            }],
            compensation: Compensation {
                fixed_fee: Some(Money { amount: Decimal::new(500, 0), currency: "USD".into() }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn validation_names_the_field() {
        assert_eq!(terms().validate(), Ok(()));
        let mut t = terms();
        t.deliverables[0].post_type = "tiktok_dance".into();
        assert_eq!(t.validate().unwrap_err().field, "deliverables[0].post_type");
        let mut t = terms();
        t.deliverables[0].quantity = 0;
        assert_eq!(t.validate().unwrap_err().field, "deliverables[0].quantity");
        let mut t = terms();
        t.compensation = Compensation::default();
        assert_eq!(t.validate().unwrap_err().field, "compensation");
        let mut t = terms();
        t.compensation.fixed_fee =
            Some(Money { amount: Decimal::new(-1, 0), currency: "USD".into() });
        assert_eq!(t.validate().unwrap_err().field, "compensation.fixed_fee.amount");
        let mut t = terms();
        t.compensation.fixed_fee = Some(Money { amount: Decimal::ONE, currency: "usd".into() });
        assert_eq!(t.validate().unwrap_err().field, "compensation.fixed_fee.currency");
        let mut t = terms();
        t.compensation.commission_percent = Some(Decimal::new(150, 0));
        assert_eq!(t.validate().unwrap_err().field, "compensation.commission_percent");
        let mut t = terms();
        t.compensation.fixed_fee =
            Some(Money { amount: Decimal::new(5005, 1), currency: "JPY".into() });
        let e = t.validate().unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("compensation.fixed_fee.amount", "JPY takes 0 decimal(s) at most")
        );
    }

    #[test]
    fn money_is_exact_and_written_in_minor_units() {
        let read = |j: &str| serde_json::from_str::<Money>(j).unwrap().in_minor_units();
        let usd = read(r#"{"amount": "19.99", "currency": "USD"}"#);
        assert_eq!(serde_json::to_string(&usd).unwrap(), r#"{"amount":"19.99","currency":"USD"}"#);
        // Numbers written by earlier versions read the same.
        assert_eq!(read(r#"{"amount": 19.99, "currency": "USD"}"#), usd);
        assert_eq!(read(r#"{"amount": 500, "currency": "USD"}"#).amount.to_string(), "500.00");
        assert_eq!(read(r#"{"amount": 500, "currency": "JPY"}"#).amount.to_string(), "500");
        assert_eq!(read(r#"{"amount": "1.5", "currency": "KWD"}"#).to_string(), "1.500 KWD");
        // 0.1 + 0.2 is 0.3, as money should be.
        let sum = read(r#"{"amount": "0.1", "currency": "EUR"}"#).amount
            + read(r#"{"amount": "0.2", "currency": "EUR"}"#).amount;
        assert_eq!(sum.to_string(), "0.30");
    }
}
