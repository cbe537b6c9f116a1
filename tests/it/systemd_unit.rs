//! The production unit `systemd/collabd.service` passes `systemd-analyze verify` and scores
//! at most 2.0 in `systemd-analyze security --offline=true`; the sysusers.d and tmpfiles.d
//! snippets beside it apply cleanly to a scratch root and create what the unit refers to.
//!
//! Every failure prints the tool's full output. Without the tools (the `systemd` package),
//! a test prints why it is skipped and returns.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The highest overall exposure `systemd-analyze security` may report.
const MAX_EXPOSURE: f64 = 2.0;
/// Where the unit expects the daemon; the verify tests point it at the built binary.
const INSTALLED_BINARY: &str = "/usr/bin/collabd";

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn unit_path() -> PathBuf {
    repo_file("systemd/collabd.service")
}

/// Finds a systemd tool on PATH or where Debian puts it; prints the skip reason if absent.
fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0));
    if found.is_none() {
        eprintln!("skipped: {name} not installed (it comes with Debian's `systemd` package)");
    }
    found
}

/// Runs a systemd tool without colours, pager or locale surprises.
fn run(program: &Path, args: &[&str]) -> (Output, String) {
    let output = Command::new(program)
        .args(args)
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_LOG_COLOR", "0")
        .env("SYSTEMD_PAGER", "cat")
        .env("SYSTEMD_LOG_LEVEL", "info")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let report = format!(
        "$ {} {}\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        program.display(),
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    (output, report)
}

/// Output lines that are about our unit (its name, its path or the daemon binary).
/// Other lines can only concern the host's own units pulled in as dependencies.
fn lines_about_collabd(output: &Output) -> Vec<String> {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    text.lines().filter(|l| l.contains("collabd")).map(str::to_owned).collect()
}

/// A copy of the unit, named collabd.service in a scratch directory, whose commands run
/// the binary cargo built: `verify` checks that every command is executable, and
/// /usr/bin/collabd is not installed on a build machine. Everything else is unchanged.
fn verifiable_copy(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    verifiable_copy_of(&unit_path(), "collabd.service", dir, edit)
}

/// As `verifiable_copy`, for any of our units, saved as `name` (an instance name such as
/// `collabd@brand.service` for the template).
fn verifiable_copy_of(
    unit: &Path,
    name: &str,
    dir: &Path,
    edit: impl Fn(String) -> String,
) -> PathBuf {
    let original = fs::read_to_string(unit).expect("read the unit");
    let uses = original.matches(INSTALLED_BINARY).count();
    assert!(uses >= 1, "expected ExecStart= to run {INSTALLED_BINARY}");
    let built = env!("CARGO_BIN_EXE_collabd");
    let mut text = original.replace(INSTALLED_BINARY, &format!("\"{built}\""));
    if !Path::new("/bin/kill").exists() {
        // procps is not a dependency of systemd; stand in for it so that the rest of the
        // unit is still verified. On a real host /bin/kill is there.
        let stand_in = dir.join("kill");
        fs::write(&stand_in, "#!/bin/sh\nexit 0\n").unwrap();
        fs::set_permissions(&stand_in, fs::Permissions::from_mode(0o755)).unwrap();
        eprintln!("note: /bin/kill is absent here (procps): ExecReload= verified with a stand-in");
        text = text.replace("/bin/kill", &stand_in.display().to_string());
    }
    let path = dir.join(name);
    fs::write(&path, edit(text)).unwrap();
    path
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let Some(analyze) = tool("systemd-analyze") else { return };
    let dir = tempfile::tempdir().unwrap();
    let unit = verifiable_copy(dir.path(), |t| t);
    let (output, report) = run(&analyze, &["verify", unit.to_str().unwrap()]);
    let complaints = lines_about_collabd(&output);
    assert!(
        output.status.success() && complaints.is_empty(),
        "systemd-analyze verify rejected the unit:\n{}\n\n{report}",
        complaints.join("\n")
    );
}

/// The verify test above only means something if verify really loads our copy and
/// reports what is wrong with it: a broken copy must be reported.
#[test]
fn verify_reports_a_broken_copy() {
    let Some(analyze) = tool("systemd-analyze") else { return };
    let dir = tempfile::tempdir().unwrap();

    let missing = dir.path().join("no-such-collabd");
    let unit = verifiable_copy(dir.path(), |t| {
        t.replace(env!("CARGO_BIN_EXE_collabd"), missing.to_str().unwrap())
    });
    let (output, report) = run(&analyze, &["verify", unit.to_str().unwrap()]);
    assert!(
        !output.status.success() && !lines_about_collabd(&output).is_empty(),
        "verify accepted a unit whose ExecStart= does not exist:\n{report}"
    );

    let unit = verifiable_copy(dir.path(), |t| {
        t.replacen("[Service]\n", "[Service]\nNoSuchSetting=yes\n", 1)
    });
    let (output, report) = run(&analyze, &["verify", unit.to_str().unwrap()]);
    assert!(
        lines_about_collabd(&output).iter().any(|l| l.contains("NoSuchSetting")),
        "verify did not report an unknown setting in the unit:\n{report}"
    );
}

/// Reads "Overall exposure level for collabd.service: 1.4 OK" from the report.
fn overall_exposure(stdout: &str) -> Option<f64> {
    let line = stdout.lines().find(|l| l.contains("Overall exposure level for"))?;
    let (_, after) = line.rsplit_once(": ")?;
    after.split_whitespace().next()?.parse().ok()
}

#[test]
fn unit_exposure_is_at_most_two() {
    let Some(analyze) = tool("systemd-analyze") else { return };
    let unit = unit_path();
    let (output, report) =
        run(&analyze, &["security", "--offline=true", "--no-pager", unit.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(score) = overall_exposure(&stdout) else {
        panic!("no overall exposure level in the output of systemd-analyze security:\n{report}")
    };
    eprintln!("collabd.service overall exposure: {score}");
    assert!(
        score <= MAX_EXPOSURE,
        "collabd.service exposure {score} is above {MAX_EXPOSURE}:\n{report}"
    );
}

#[test]
fn exposure_line_is_parsed() {
    let sample = "✗ UMask= Files created by service are group-writable by default 0.1\n\n\
                  → Overall exposure level for collabd.service: 1.4 OK 🙂\n";
    assert_eq!(overall_exposure(sample), Some(1.4));
    assert_eq!(overall_exposure("-> Overall exposure level for x.service: 9.6 UNSAFE"), Some(9.6));
    assert_eq!(overall_exposure("nothing here"), None);
}

/// Values of `Key=` lines in the unit, split on whitespace.
fn unit_values(key: &str) -> Vec<String> {
    let text = fs::read_to_string(unit_path()).unwrap();
    let prefix = format!("{key}=");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .flat_map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// Every relative `password_file` of the example config is a credential the unit loads.
#[test]
fn example_config_credentials_are_loaded_by_the_unit() {
    let credentials: Vec<String> = unit_values("LoadCredential")
        .iter()
        .filter_map(|v| v.split_once(':').map(|(name, _)| name.to_owned()))
        .collect();
    let example = fs::read_to_string(repo_file("config/collabd.example.toml")).unwrap();
    for line in example.lines().map(str::trim).filter(|l| l.starts_with("password_file")) {
        let name = line.split('"').nth(1).unwrap_or_else(|| panic!("unparsed line {line:?}"));
        if Path::new(name).is_relative() {
            assert!(
                credentials.iter().any(|c| c == name),
                "config/collabd.example.toml reads credential {name:?}, but the unit only \
                 loads {credentials:?}"
            );
        }
    }
}

fn ids_by_name(file: &Path) -> Vec<(String, u32)> {
    let text = fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut fields = l.split(':');
            let name = fields.next()?.to_owned();
            let id = fields.nth(1)?.parse().ok()?;
            Some((name, id))
        })
        .collect()
}

fn id_of(table: &[(String, u32)], name: &str, file: &str) -> u32 {
    table
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, id)| *id)
        .unwrap_or_else(|| panic!("{name:?} missing from {file}: {table:?}"))
}

#[test]
fn sysusers_and_tmpfiles_snippets_apply_to_a_scratch_root() {
    let (Some(sysusers), Some(tmpfiles)) = (tool("systemd-sysusers"), tool("systemd-tmpfiles"))
    else {
        return;
    };
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: applying the tmpfiles.d snippet chowns files, which needs root");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("etc")).unwrap();
    let root_arg = format!("--root={}", root.path().display());

    let snippet = repo_file("systemd/collabd.sysusers");
    let (output, report) = run(&sysusers, &[&root_arg, snippet.to_str().unwrap()]);
    assert!(output.status.success(), "systemd-sysusers failed:\n{report}");
    let users = ids_by_name(&root.path().join("etc/passwd"));
    let groups = ids_by_name(&root.path().join("etc/group"));
    for user in unit_values("User") {
        id_of(&users, &user, "/etc/passwd");
    }
    for group in unit_values("Group").into_iter().chain(unit_values("SupplementaryGroups")) {
        id_of(&groups, &group, "/etc/group");
    }
    let collabd_gid = id_of(&groups, "collabd", "/etc/group");

    let snippet = repo_file("systemd/collabd.tmpfiles");
    let (output, report) = run(&tmpfiles, &[&root_arg, "--create", snippet.to_str().unwrap()]);
    assert!(output.status.success(), "systemd-tmpfiles failed:\n{report}");
    let expect = |path: &str, mode: u32, gid: u32| {
        let meta = fs::metadata(root.path().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(meta.is_dir(), "{path} is not a directory");
        assert_eq!(
            (meta.mode() & 0o7777, meta.uid(), meta.gid()),
            (mode, 0, gid),
            "{path}: (mode, uid, gid)"
        );
    };
    expect("etc/collabd", 0o750, collabd_gid);
    expect("etc/collabd/credentials", 0o700, 0);
}

fn template_path() -> PathBuf {
    repo_file("systemd/collabd@.service")
}

/// The template `collabd@.service` is `collabd.service` but for what an instance must have
/// of its own: its config file, runtime directory and credentials (and the comments that
/// say so). Any other difference is a hardening drift between the two.
#[test]
fn template_differs_from_the_unit_only_where_an_instance_must() {
    let keys = |path: &Path| -> Vec<String> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter(|l| {
                !["Description=", "ExecStart=", "RuntimeDirectory=", "LoadCredential="]
                    .iter()
                    .any(|k| l.starts_with(k))
            })
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(keys(&template_path()), keys(&unit_path()));
    let template = fs::read_to_string(template_path()).unwrap();
    for line in [
        "ExecStart=/usr/bin/collabd --config /etc/collabd/%i.toml",
        "RuntimeDirectory=collabd/%i",
        "LoadCredential=%i:/etc/collabd/credentials/%i",
    ] {
        assert!(template.lines().any(|l| l == line), "the template lacks {line:?}");
    }
}

#[test]
fn template_instance_passes_verify_and_scores_like_the_unit() {
    let Some(analyze) = tool("systemd-analyze") else { return };
    let dir = tempfile::tempdir().unwrap();
    let unit = verifiable_copy_of(&template_path(), "collabd@brand.service", dir.path(), |t| t);
    let (output, report) = run(&analyze, &["verify", unit.to_str().unwrap()]);
    let complaints = lines_about_collabd(&output);
    assert!(
        output.status.success() && complaints.is_empty(),
        "systemd-analyze verify rejected collabd@brand.service:\n{}\n\n{report}",
        complaints.join("\n")
    );
    let exposure = |path: &Path| {
        let (output, report) =
            run(&analyze, &["security", "--offline=true", "--no-pager", path.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        overall_exposure(&stdout).unwrap_or_else(|| panic!("no exposure level:\n{report}"))
    };
    let instance = dir.path().join("score").join("collabd@brand.service");
    fs::create_dir_all(instance.parent().unwrap()).unwrap();
    fs::copy(template_path(), &instance).unwrap();
    let (template, unit) = (exposure(&instance), exposure(&unit_path()));
    eprintln!("collabd@brand.service overall exposure: {template}");
    assert!(template <= MAX_EXPOSURE, "collabd@.service exposure {template}");
    assert_eq!(template, unit, "the template scores like collabd.service");
}
