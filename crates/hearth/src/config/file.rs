//! The TOML settings file of `hearth serve` (`--config` / `HEARTH_CONFIG`). Its values become
//! the defaults of the flags they name before the command line is parsed again, so a flag wins
//! over its variable, a variable over the file, the file over the built-in default, and every
//! value goes through the same parser and checks as a flag's. A key is the variable's name
//! without `HEARTH_`, in lower case (`port = 9000`, `api_keys_file = "/etc/hearth/keys"`,
//! `hf_endpoint = "http://mirror"`).

use crate::{Cli, Command};
use clap::{CommandFactory, FromArgMatches, Parser};
use std::ffi::OsString;
use std::path::Path;

/// Parses the command line, with `hearth serve`'s settings file (if one is named) under it.
/// Help, version and usage errors print and exit, as clap does.
///
/// # Errors
/// An unreadable file, bad TOML, a key that is not a setting, or a value its flag refuses.
pub fn parse_cli(args: Vec<OsString>) -> anyhow::Result<Cli> {
    let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| e.exit());
    let Command::Serve(serve) = &cli.command else { return Ok(cli) };
    let Some(path) = serve.server.config.clone().filter(|p| !p.as_os_str().is_empty()) else { return Ok(cli) };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("cannot read the settings file {}: {e}", path.display()))?;
    let defaults = file_defaults(&text).map_err(|e| in_file(&path, e))?;
    let command = Cli::command().mut_subcommand("serve", |mut serve| {
        for (id, values) in defaults {
            serve = serve.mut_arg(id, |a| a.default_values(values));
        }
        serve
    });
    let matches = command.try_get_matches_from(&args).map_err(|e| in_file(&path, e.to_string()))?;
    Cli::from_arg_matches(&matches).map_err(|e| in_file(&path, e.to_string()))
}

fn in_file(path: &Path, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("settings file {}: {}", path.display(), e.to_string().trim_start_matches("error: ").trim_end())
}

/// `(argument id, values)` for each key of a settings file.
fn file_defaults(text: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.message().to_string())?;
    // `[models."ID"]` tables set one model's own settings; they become `model_gpu_layers`.
    if let Some(models) = table.remove("models") {
        let per_model = per_model_gpu_layers(models)?;
        if !per_model.is_empty() {
            table
                .insert("model_gpu_layers".into(), toml::Value::Array(per_model.into_iter().map(Into::into).collect()));
        }
    }
    let command = Cli::command();
    let serve = command.find_subcommand("serve").ok_or("no serve command")?;
    table
        .into_iter()
        .map(|(key, value)| {
            let arg = serve
                .get_arguments()
                .find(|a| a.get_env().is_some_and(|e| file_key(&e.to_string_lossy()) == key))
                .filter(|a| a.get_id() != "config")
                .ok_or_else(|| format!("unknown setting `{key}`"))?;
            Ok((arg.get_id().to_string(), values(&key, value)?))
        })
        .collect()
}

/// The key of a variable in the file: `HEARTH_PORT` is `port`, `HF_ENDPOINT` is `hf_endpoint`.
fn file_key(var: &str) -> String {
    var.strip_prefix("HEARTH_").unwrap_or(var).to_ascii_lowercase()
}

/// `ID=LAYERS` for each `[models."ID"]` table's `gpu_layers`.
fn per_model_gpu_layers(models: toml::Value) -> Result<Vec<String>, String> {
    let toml::Value::Table(models) = models else {
        return Err("`models` must be a table of `[models.\"ID\"]` tables".into());
    };
    let mut out = Vec::new();
    for (id, settings) in models {
        let toml::Value::Table(settings) = settings else { return Err(format!("`models.{id}` must be a table")) };
        for (key, value) in settings {
            match key.as_str() {
                "gpu_layers" => out.push(format!("{id}={}", scalar(&key, value)?)),
                other => return Err(format!("unknown setting `{other}` for model `{id}` (known: gpu_layers)")),
            }
        }
    }
    Ok(out)
}

/// A TOML value as a flag's values: an array is one value per element.
fn values(key: &str, value: toml::Value) -> Result<Vec<String>, String> {
    match value {
        toml::Value::Array(items) => items.into_iter().map(|v| scalar(key, v)).collect(),
        v => scalar(key, v).map(|s| vec![s]),
    }
}

fn scalar(key: &str, value: toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        _ => Err(format!("`{key}` must be a string, number, boolean or a list of them")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn serve(file: &str, flags: &[&str]) -> anyhow::Result<Settings> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hearth-config-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("hearth.toml");
        std::fs::write(&path, file)?;
        let mut args: Vec<OsString> = vec!["hearth".into(), "serve".into(), "--config".into(), path.into()];
        args.extend(flags.iter().map(OsString::from));
        let parsed = parse_cli(args);
        let _ = std::fs::remove_dir_all(&dir);
        match parsed?.command {
            Command::Serve(s) => s.validate(),
            _ => anyhow::bail!("not serve"),
        }
    }

    #[test]
    fn the_file_sets_what_flags_leave_alone() {
        let file = "port = 9000\nparallel = 3\ncors_origins = [\"http://a\", \"http://b\"]\npublic_health = false\n\
                    memory_budget = \"1GiB\"\ntemperature = 0.2\nhf_endpoint = \"http://mirror.test\"\n";
        let s = serve(file, &["--port", "9001"]).unwrap();
        assert_eq!(s.addr.port(), 9001, "a flag wins over the file");
        assert_eq!(s.engine.parallel, 3);
        assert_eq!(s.cors_origins, ["http://a", "http://b"]);
        assert!(!s.auth.public_health);
        assert_eq!(s.engine.memory_budget, 1 << 30);
        assert!((s.engine.sampling.temperature - 0.2).abs() < 1e-6);
        assert_eq!(s.hub.endpoint, "http://mirror.test");
        assert_eq!(s.engine.batch_size, hearth_engine::EngineSettings::default().batch_size, "the rest stay default");
    }

    #[test]
    fn a_model_table_sets_that_models_gpu_layers() {
        let s = serve(
            "gpu_layers = \"auto\"\n[models.\"big-model\"]\ngpu_layers = 12\n[models.small]\ngpu_layers = \"all\"\n",
            &[],
        )
        .unwrap();
        use hearth_engine::gpu::GpuLayers;
        assert_eq!(s.engine.gpu.layers, GpuLayers::Auto);
        let mut of = s.engine.gpu_layers_of.clone();
        of.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(of, vec![("big-model".to_string(), GpuLayers::Count(12)), ("small".to_string(), GpuLayers::All)]);
        assert!(serve("[models.x]\nthreads = 2\n", &[]).is_err(), "only known per-model settings");
    }

    #[test]
    fn comma_lists_in_a_string_split_like_the_variable() {
        let s = serve("aliases = \"a=b,c=d\"\n", &[]).unwrap();
        assert_eq!(s.aliases, vec![("a".into(), "b".into()), ("c".into(), "d".into())]);
    }

    #[test]
    fn a_bad_file_names_the_file_and_the_setting() {
        let err = |file: &str| serve(file, &[]).unwrap_err().to_string();
        assert!(err("nope = 1").contains("unknown setting `nope`"), "{}", err("nope = 1"));
        assert!(err("config = \"other.toml\"").contains("unknown setting `config`"));
        assert!(err("port = ").contains("hearth.toml"));
        let bad = err("parallel = \"many\"");
        assert!(bad.contains("hearth.toml") && bad.contains("--parallel"), "{bad}");
        assert!(err("parallel = 999").contains("--parallel must be"), "checked like the flag");
        assert!(err("port = {a = 1}").contains("`port` must be"));
    }
}
