//! `collabctl collab …`: collaborations, their terms and lifecycle, and the export.

use crate::*;

#[derive(Args, Default)]
pub(crate) struct TermsArgs {
    /// "QUANTITY x POST_TYPE", e.g. "2 x tiktok_video" (repeatable).
    #[arg(long)]
    pub(crate) deliverable: Vec<String>,
    #[arg(long)]
    pub(crate) talking_points: Vec<String>,
    #[arg(long)]
    pub(crate) hashtags: Vec<String>,
    #[arg(long)]
    pub(crate) attribution_keywords: Vec<String>,
    #[arg(long, requires = "currency", allow_negative_numbers = true)]
    pub(crate) fixed_fee: Option<rust_decimal::Decimal>,
    /// ISO 4217 code, e.g. USD.
    #[arg(long)]
    pub(crate) currency: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) commission_percent: Option<rust_decimal::Decimal>,
    #[arg(long)]
    pub(crate) product: Option<String>,
    /// "2026-12-01" or "publish=2026-12-01" (repeatable).
    #[arg(long)]
    pub(crate) deadline: Vec<String>,
    #[arg(long)]
    pub(crate) terms: Option<String>,
}

/// Which collaborations `collab list` and `collab export` show.
#[derive(Args, Clone)]
pub(crate) struct CollabFilterArgs {
    #[arg(long)]
    pub(crate) campaign: Option<String>,
    #[arg(long)]
    pub(crate) status: Option<collabd::collab::CollabStatus>,
    #[arg(long)]
    pub(crate) creator: Option<String>,
}

impl CollabFilterArgs {
    /// The `collab.list` call for one page of these collaborations.
    pub(crate) fn call(
        &self,
        since: Option<chrono::DateTime<chrono::Utc>>,
        p: PageParams,
    ) -> CollabList {
        CollabList {
            campaign: self.campaign.clone(),
            status: self.status,
            creator: self.creator.clone(),
            since,
            after: p.after,
            limit: p.limit,
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum CollabCmd {
    Create {
        #[arg(long, required_unless_present = "from_file")]
        creator: Option<String>,
        #[arg(long, required_unless_present = "from_file")]
        campaign: Option<String>,
        #[command(flatten)]
        terms: TermsArgs,
        #[arg(long)]
        allow_duplicate: bool,
        /// A JSON file with the collab.create parameters (see docs/admin-protocol.md).
        #[arg(long, conflicts_with_all = ["creator", "campaign"])]
        from_file: Option<PathBuf>,
    },
    List {
        #[command(flatten)]
        filter: CollabFilterArgs,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Every matching collaboration to stdout, newest first, streamed page by page (for
    /// spreadsheets: csv; for scripts: jsonl, one object a line).
    ///
    /// CSV is made safe for spreadsheets: a cell starting with `=`, `+`, `-`, `@`, TAB or
    /// CR (a formula to Excel, LibreOffice and Google Sheets, e.g. `=HYPERLINK(…)`) is
    /// written with a leading `'`, as OWASP recommends; negative-looking values such as
    /// `-2` too (no column holds a bare number that can be negative). `--raw` writes every
    /// cell as stored. JSONL is always as stored.
    Export {
        #[arg(long, value_enum, default_value = "csv")]
        format: ExportFormat,
        /// CSV cells exactly as stored, without the leading `'` that keeps spreadsheets
        /// from running them as formulas: for programs, not for spreadsheets.
        #[arg(long)]
        raw: bool,
        #[command(flatten)]
        filter: CollabFilterArgs,
        /// Only those created at or after this time (RFC 3339, or a date: YYYY-MM-DD, UTC).
        #[arg(long)]
        since: Option<String>,
    },
    Show {
        id: i64,
    },
    /// Replace the terms.
    Update {
        id: i64,
        #[command(flatten)]
        terms: TermsArgs,
        #[arg(long)]
        reason: Option<String>,
    },
    /// pending → negotiating → fulfilling → completed.
    Advance {
        id: i64,
        #[arg(long)]
        to: collabd::collab::CollabStatus,
        #[arg(long)]
        reason: Option<String>,
    },
    Cancel {
        id: i64,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    Csv,
    Jsonl,
}

/// Runs `collabctl collab …`.
pub(crate) fn run(cli: &Cli, c: &mut Client, cmd: &CollabCmd) -> anyhow::Result<()> {
    match cmd {
        CollabCmd::Create { creator, campaign, terms, allow_duplicate, from_file } => {
            let params = match from_file {
                Some(f) => {
                    let text = std::fs::read_to_string(f)
                        .with_context(|| format!("cannot read {}", f.display()))?;
                    let de = &mut serde_json::Deserializer::from_str(&text);
                    serde_path_to_error::deserialize(de).map_err(|e| {
                        anyhow::anyhow!("{} ({}): {}", f.display(), e.path(), e.inner())
                    })?
                }
                None => CollabCreate {
                    creator: creator.clone().unwrap_or_default(),
                    campaign: campaign.clone().unwrap_or_default(),
                    terms: terms_from(terms)?,
                    allow_duplicate: *allow_duplicate,
                },
            };
            show(cli, c, params, render_collab)
        }
        CollabCmd::List { filter, page } => {
            list(cli, c, *page, |p| filter.call(None, p), |c: &Collaboration| c.id, render_collabs)
        }
        CollabCmd::Export { format, raw, filter, since } => {
            let since =
                since.as_deref().map(parse_since).transpose().map_err(anyhow::Error::msg)?;
            let page = |after, limit| filter.call(since, PageParams { after, limit });
            export(c, *format, *raw, page)
        }
        CollabCmd::Show { id } => show(cli, c, CollabShow { id: *id }, render_collab),
        CollabCmd::Update { id, terms, reason } => {
            let params =
                CollabUpdate { id: *id, terms: terms_from(terms)?, reason: reason.clone() };
            show(cli, c, params, render_collab)
        }
        CollabCmd::Advance { id, to, reason } => {
            let params = CollabAdvance { id: *id, to: *to, reason: reason.clone() };
            show(cli, c, params, render_collab)
        }
        CollabCmd::Cancel { id, reason } => {
            show(cli, c, CollabCancel { id: *id, reason: reason.clone() }, render_collab)
        }
    }
}

/// Builds `terms` from flags; talking points, hashtags and keywords apply to every
/// deliverable.
pub(crate) fn terms_from(t: &TermsArgs) -> anyhow::Result<Terms> {
    let mut deliverables = Vec::new();
    for d in &t.deliverable {
        let (qty, kind) = d
            .split_once(['x', 'X', '×'])
            .map(|(q, k)| (q.trim(), k.trim()))
            .unwrap_or(("1", d.trim()));
        let quantity: u32 =
            qty.parse().with_context(|| format!("--deliverable {d:?}: quantity"))?;
        deliverables.push(Deliverable {
            post_type: kind.to_owned(),
            quantity,
            talking_points: t.talking_points.clone(),
            hashtags: t.hashtags.clone(),
            attribution_keywords: t.attribution_keywords.clone(),
        });
    }
    let compensation = Compensation {
        fixed_fee: t
            .fixed_fee
            .map(|amount| Money { amount, currency: t.currency.clone().unwrap_or_default() }),
        commission_percent: t.commission_percent,
        product: t.product.clone(),
    };
    let deadlines = t
        .deadline
        .iter()
        .map(|d| {
            let (what, date) = d.split_once('=').unwrap_or(("deliver", d.as_str()));
            let date = chrono::NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
                .with_context(|| format!("--deadline {d:?}: date is not YYYY-MM-DD"))?;
            Ok(Deadline { what: what.trim().to_owned(), date })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Terms {
        deliverables,
        compensation,
        timeline: Timeline { deadlines },
        additional_terms: t.terms.clone(),
    })
}

/// Rows fetched per page while exporting: large pages, few round trips, bounded memory.
pub(crate) const EXPORT_PAGE: u32 = 5000;

/// Streams every collaboration `filter` selects to stdout, a page at a time. CSV cells go
/// through [`display::csv_cell`] unless `raw`.
pub(crate) fn export(
    c: &mut Client,
    format: ExportFormat,
    raw: bool,
    filter: impl Fn(Option<i64>, Option<u32>) -> CollabList,
) -> anyhow::Result<()> {
    let out = std::io::BufWriter::with_capacity(256 * 1024, std::io::stdout().lock());
    let (mut csv, mut jsonl) = match format {
        ExportFormat::Csv => (Some(csv::Writer::from_writer(out)), None),
        ExportFormat::Jsonl => (None, Some(out)),
    };
    if let Some(w) = csv.as_mut() {
        w.write_record([
            "id",
            "status",
            "source",
            "creator_handle",
            "creator_name",
            "platform",
            "campaign",
            "deliverables",
            "compensation",
            "timeline",
            "additional_terms",
            "thread_id",
            "created_at",
            "updated_at",
        ])?;
    }
    let mut after = None;
    loop {
        let (items, next) = c.call(filter(after, Some(EXPORT_PAGE)))?.into_parts();
        for l in &items {
            if let Some(w) = csv.as_mut() {
                let (id, deliverables) = (l.id.to_string(), erased::Json::json(&l.deliverables));
                let (compensation, timeline) = (l.compensation.json(), l.timeline.json());
                let (created, updated) = (l.created_at.to_rfc3339(), l.updated_at.to_rfc3339());
                let cells = [
                    id.as_str(),
                    l.status.as_str(),
                    &l.source,
                    &l.creator.handle,
                    &l.creator.name,
                    &l.creator.platform,
                    &l.campaign.name,
                    &deliverables,
                    &compensation,
                    &timeline,
                    l.additional_terms.as_deref().unwrap_or_default(),
                    l.thread_id.as_deref().unwrap_or_default(),
                    &created,
                    &updated,
                ];
                if raw {
                    w.write_record(cells)?;
                } else {
                    w.write_record(cells.map(display::csv_cell).iter().map(|c| c.as_bytes()))?;
                }
            }
            if let Some(out) = jsonl.as_mut() {
                serde_json::to_writer(&mut *out, l)?;
                out.write_all(b"\n")?;
            }
        }
        let last = items.last().map(|l| l.id);
        match next {
            Some(n) if Some(n) == last && Some(n) != after => after = Some(n),
            _ => break,
        }
    }
    if let Some(mut w) = csv {
        w.flush()?;
    }
    if let Some(mut out) = jsonl {
        out.flush()?;
    }
    Ok(())
}
