//! `collabctl creator …`: the Creator Pool, one by one or imported from CSV.

use crate::*;

#[derive(Subcommand)]
pub(crate) enum CreatorCmd {
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        platform: String,
        #[arg(long)]
        handle: String,
        #[arg(long)]
        email: Vec<String>,
        #[arg(long)]
        manager_email: Vec<String>,
        #[arg(long)]
        tag: Vec<String>,
    },
    List {
        #[arg(long)]
        search: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// By id, platform:handle, handle or email address.
    Show { creator: String },
    /// CSV with columns name,platform,handle,email[,manager_email][,tags] (tags split on ';').
    /// All or nothing: one invalid row means nothing is imported (see --skip-invalid).
    Import {
        file: PathBuf,
        #[command(flatten)]
        opts: ImportOptions,
    },
}

/// Runs `collabctl creator …`.
pub(crate) fn run(cli: &Cli, c: &mut Client, cmd: &CreatorCmd) -> anyhow::Result<()> {
    match cmd {
        CreatorCmd::Add { name, platform, handle, email, manager_email, tag } => {
            let fields = CreatorFields {
                name: name.clone(),
                platform: platform.clone(),
                handle: handle.clone(),
                emails: email.clone(),
                manager_emails: manager_email.clone(),
                tags: tag.clone(),
            };
            show(cli, c, fields, |x| render_creators(slice(x)))
        }
        CreatorCmd::List { search, page } => list(
            cli,
            c,
            *page,
            |p| CreatorList { search: search.clone(), after: p.after, limit: p.limit },
            |c: &Creator| c.id,
            render_creators,
        ),
        CreatorCmd::Show { creator } => {
            show(cli, c, CreatorShow { creator: creator.clone() }, |x| render_creators(slice(x)))
        }
        CreatorCmd::Import { file, opts } => {
            import_file(cli, file, Kind::Creator, *opts, &mut |rows, f| {
                let (dry_run, skip_invalid, more) = (f.dry_run, f.skip_invalid, f.more);
                Ok(c.call_raw(CreatorImport { rows, dry_run, skip_invalid, more }.into())?)
            })
        }
    }
}
