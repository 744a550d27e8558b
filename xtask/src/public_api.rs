//! `cargo xtask public-api [--check]`: the checked-in listing of every published library's
//! public API, one line per item, in `docs/public-api/<crate>.txt`.
//!
//! The listing is read from rustdoc's JSON output (`cargo doc --no-deps` with
//! `-Z unstable-options --output-format json`, made available on the stable toolchain by
//! `RUSTC_BOOTSTRAP=1`; one rustdoc run per crate, in one cargo invocation, in
//! `target/public-api/` so the ordinary builds' dependencies are not rebuilt). A small walker starts at each crate root and follows public modules
//! and re-exports, so an item appears under every path a user can name it by, and prints:
//! modules, structs with their public fields, enums with their variants, traits with their
//! items, functions and inherent methods with their signatures, constants, statics, type
//! aliases, explicit trait impls (not blanket or auto-trait ones) and re-exports of other
//! crates' items resolved to the item they name. Lines are sorted, so the file is
//! deterministic and a change of the API is a reviewable diff.
//!
//! `--check` regenerates into memory and fails with the added and removed lines when the
//! checked-in files differ (`cargo xtask ci` runs it after the tests).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::Value;

/// Where the listings live, relative to the workspace root.
const LISTING_DIR: &str = "docs/public-api";

pub(crate) fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let check = match args {
        [] => false,
        [a] if a == "--check" => true,
        _ => bail!("usage: cargo xtask public-api [--check] (got {args:?})"),
    };
    let crates = published_libraries(root)?;
    let generated = generate(root, &crates)?;
    let dir = root.join(LISTING_DIR);
    if check {
        return compare(&dir, &generated);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for stale in listing_files(&dir)? {
        if !generated.contains_key(&stale) {
            std::fs::remove_file(dir.join(format!("{stale}.txt")))?;
        }
    }
    for (name, text) in &generated {
        let path = dir.join(format!("{name}.txt"));
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    crate::ci::say(&format!("public-api: wrote {} listings to {LISTING_DIR}/", generated.len()));
    Ok(())
}

/// The packages under `crates/` with a library target and without `publish = false`.
fn published_libraries(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root.join("crates")).context("reading crates/")? {
        let dir = entry?.path();
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else { continue };
        if !dir.join("src/lib.rs").exists() || manifest.contains("\npublish = false") {
            continue;
        }
        let name = manifest
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .map(|n| n.trim().trim_matches('"').to_owned())
            .with_context(|| format!("no package name in {}", dir.display()))?;
        names.push(name);
    }
    names.sort();
    if names.is_empty() {
        bail!("no published library crate found under crates/");
    }
    Ok(names)
}

/// Runs rustdoc's JSON backend over `crates` and renders one listing per crate.
fn generate(root: &Path, crates: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    cmd.args(["doc", "--no-deps", "--locked", "--quiet"]);
    for name in crates {
        cmd.args(["-p", name]);
    }
    // A target directory of its own: RUSTC_BOOTSTRAP changes what dependencies' build
    // scripts detect (rustix, proc-macro2, …), and sharing `target/` would rebuild (or
    // break) the ordinary builds each time this runs.
    let target = target_dir(root).join("public-api");
    cmd.env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTDOCFLAGS", "-Z unstable-options --output-format json --cap-lints allow")
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(root);
    let status = cmd.status().context("running cargo doc (rustdoc JSON)")?;
    if !status.success() {
        bail!("cargo doc --output-format json failed ({status})");
    }
    let mut jsons = BTreeMap::new();
    for name in crates {
        let path = target.join("doc").join(format!("{}.json", name.replace('-', "_")));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let json: Value = serde_json::from_str(&text)
            .with_context(|| format!("parsing rustdoc JSON {}", path.display()))?;
        jsons.insert(name.clone(), json);
    }
    // Each workspace crate's items by their public path, also in the other crates' listings
    // (rustdoc names another crate's item by where it is defined, maybe a private module).
    let mut aliases = HashMap::new();
    for json in jsons.values() {
        aliases.extend(Krate::new(json, HashMap::new())?.aliases());
    }
    let mut out = BTreeMap::new();
    let mut roots = BTreeMap::new();
    for (name, json) in &jsons {
        out.insert(name.clone(), listing(name, json, aliases.clone())?);
        roots.insert(name.clone(), root_names(json));
    }
    if let (Some(core), Some(facade)) = (roots.get("tokensmith-core"), roots.get("tokensmith")) {
        let missing: Vec<&str> = core.difference(facade).map(String::as_str).collect();
        if !missing.is_empty() {
            bail!(
                "the `tokensmith` facade does not re-export {} of `tokensmith-core`'s root: \
                 add them to `pub use tokensmith_core::{{..}}` in crates/tokensmith/src/lib.rs",
                missing.join(", ")
            );
        }
    }
    Ok(out)
}

/// The workspace's target directory (`CARGO_TARGET_DIR`, else `target/`).
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

fn listing_files(dir: &Path) -> anyhow::Result<Vec<String>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(Vec::new()) };
    let mut names = Vec::new();
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".txt") {
            names.push(stem.to_owned());
        }
    }
    Ok(names)
}

/// Fails, listing every added (`+`) and removed (`-`) line, when the files differ.
fn compare(dir: &Path, generated: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let mut report = String::new();
    for stale in listing_files(dir)? {
        if !generated.contains_key(&stale) {
            let _ = writeln!(report, "{LISTING_DIR}/{stale}.txt: no such published crate");
        }
    }
    for (name, text) in generated {
        let path = dir.join(format!("{name}.txt"));
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        let diff = line_diff(&old, text);
        if !diff.is_empty() {
            let _ = writeln!(report, "--- {LISTING_DIR}/{name}.txt (checked in)");
            let _ = writeln!(report, "+++ {LISTING_DIR}/{name}.txt (the code now)");
            report.push_str(&diff);
        }
    }
    if report.is_empty() {
        crate::ci::say(&format!("public-api: {} listings are current", generated.len()));
        return Ok(());
    }
    bail!(
        "the public API differs from the checked-in listing:\n{report}\
         If the change is intended, run `cargo xtask public-api` and commit {LISTING_DIR}/."
    )
}

/// A diff of two sorted listings: `-` lines only in `old`, `+` lines only in `new`.
fn line_diff(old: &str, new: &str) -> String {
    let old: BTreeSet<&str> = old.lines().collect();
    let new: BTreeSet<&str> = new.lines().collect();
    let mut out = String::new();
    for line in old.difference(&new) {
        let _ = writeln!(out, "-{line}");
    }
    for line in new.difference(&old) {
        let _ = writeln!(out, "+{line}");
    }
    out
}

/// The listing of one crate from its rustdoc JSON.
fn listing(name: &str, json: &Value, aliases: HashMap<String, String>) -> anyhow::Result<String> {
    let krate = Krate::new(json, aliases)?;
    let mut lines = BTreeSet::new();
    krate.walk(&mut lines);
    let mut out = format!(
        "# The public API of {name}, generated by `cargo xtask public-api`: do not edit.\n"
    );
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

/// One crate's rustdoc JSON, with the public path of every local item it reaches.
struct Krate<'a> {
    index: &'a serde_json::Map<String, Value>,
    paths: &'a serde_json::Map<String, Value>,
    root: String,
    /// The shortest public path of each local item (by id), found by walking from the root.
    public: HashMap<String, String>,
    /// Other crates' items: defining path to public path.
    aliases: HashMap<String, String>,
}

impl<'a> Krate<'a> {
    fn new(json: &'a Value, aliases: HashMap<String, String>) -> anyhow::Result<Self> {
        let index = json["index"].as_object().context("rustdoc JSON without `index`")?;
        let paths = json["paths"].as_object().context("rustdoc JSON without `paths`")?;
        let root = id_key(&json["root"]);
        let mut krate = Krate { index, paths, root, public: HashMap::new(), aliases };
        let name = krate.item(&krate.root)["name"].as_str().unwrap_or("crate").to_owned();
        let mut public = HashMap::new();
        krate.collect_paths(&krate.root.clone(), &name, &mut public, &mut BTreeSet::new());
        krate.public = public;
        Ok(krate)
    }

    /// This crate's items: defining path (as other crates' rustdoc names them) to public path.
    fn aliases(&self) -> HashMap<String, String> {
        self.public
            .iter()
            .filter_map(|(id, public)| {
                Some((join_path(&self.paths.get(id)?["path"]), public.clone()))
            })
            .collect()
    }

    /// Another crate's item by its public path when it is a workspace crate's.
    fn alias(&self, defined: String) -> String {
        self.aliases.get(&defined).cloned().unwrap_or(defined)
    }

    fn item(&self, id: &str) -> &'a Value {
        self.index.get(id).unwrap_or(&Value::Null)
    }

    /// Records the public path of every item reachable from module `id` at `prefix`.
    fn collect_paths(
        &self,
        id: &str,
        prefix: &str,
        out: &mut HashMap<String, String>,
        seen: &mut BTreeSet<String>,
    ) {
        if !seen.insert(format!("{id}@{prefix}")) {
            return;
        }
        for (name, target) in self.module_members(id) {
            let path = format!("{prefix}::{name}");
            let better = out.get(&target).is_none_or(|old| (path.len(), &path) < (old.len(), old));
            if better {
                out.insert(target.clone(), path.clone());
            }
            if kind(self.item(&target)) == "module" {
                self.collect_paths(&target, &path, out, seen);
            }
        }
    }

    /// The public members of a module as (name, local item id); a glob re-export of a
    /// local module contributes that module's members.
    fn module_members(&self, id: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let Some(items) = self.item(id)["inner"]["module"]["items"].as_array() else { return out };
        for member in items {
            let member_id = id_key(member);
            let item = self.item(&member_id);
            if item["visibility"] != "public" {
                continue;
            }
            if kind(item) == "use" {
                let u = &item["inner"]["use"];
                let target = id_key(&u["id"]);
                if !self.index.contains_key(&target) {
                    continue; // another crate's item: listed as a re-export
                }
                if u["is_glob"] == true {
                    out.extend(self.module_members(&target));
                } else {
                    out.push((str_of(&u["name"]).to_owned(), target));
                }
            } else if let Some(name) = item["name"].as_str() {
                out.push((name.to_owned(), member_id));
            }
        }
        out
    }

    /// Every line of the listing.
    fn walk(&self, lines: &mut BTreeSet<String>) {
        let name = self.item(&self.root)["name"].as_str().unwrap_or("crate").to_owned();
        self.walk_module(&self.root.clone(), &name, lines, &mut BTreeSet::new());
    }

    fn walk_module(
        &self,
        id: &str,
        prefix: &str,
        lines: &mut BTreeSet<String>,
        seen: &mut BTreeSet<String>,
    ) {
        if !seen.insert(format!("{id}@{prefix}")) {
            return;
        }
        let Some(items) = self.item(id)["inner"]["module"]["items"].as_array() else { return };
        for member in items {
            let item = self.item(&id_key(member));
            if item["visibility"] != "public" {
                continue;
            }
            if kind(item) == "use" {
                let u = &item["inner"]["use"];
                let target = id_key(&u["id"]);
                let local = self.index.contains_key(&target);
                match (local, u["is_glob"] == true) {
                    (true, true) => self.walk_module(&target, prefix, lines, seen),
                    (true, false) => {
                        let path = format!("{prefix}::{}", str_of(&u["name"]));
                        self.emit(&target, &path, lines, seen);
                    }
                    (false, glob) => {
                        let (resolved, what) = self.external(&target, str_of(&u["source"]));
                        let line = if glob {
                            format!("pub use {prefix}::* (glob of {what} {resolved})")
                        } else {
                            let name = str_of(&u["name"]);
                            format!("pub use {prefix}::{name} = {what} {resolved}")
                        };
                        lines.insert(line);
                    }
                }
            } else if let Some(name) = item["name"].as_str() {
                self.emit(&id_key(member), &format!("{prefix}::{name}"), lines, seen);
            }
        }
    }

    /// The path and kind of another crate's item, from `paths` (else as written).
    fn external(&self, id: &str, written: &str) -> (String, String) {
        match self.paths.get(id) {
            Some(p) => (self.alias(join_path(&p["path"])), str_of(&p["kind"]).replace('_', " ")),
            None => (written.to_owned(), "item".to_owned()),
        }
    }

    /// The lines of one item named `path`.
    fn emit(
        &self,
        id: &str,
        path: &str,
        lines: &mut BTreeSet<String>,
        seen: &mut BTreeSet<String>,
    ) {
        let item = self.item(id);
        let inner = &item["inner"];
        let attrs = attrs(item);
        match kind(item) {
            "module" => {
                lines.insert(format!("pub mod {path}"));
                self.walk_module(id, path, lines, seen);
            }
            "struct" => self.emit_struct(&inner["struct"], path, attrs, lines),
            "enum" => {
                let e = &inner["enum"];
                lines.insert(format!(
                    "{attrs}pub enum {path}{}{}",
                    self.generics(&e["generics"]),
                    self.where_clause(&e["generics"])
                ));
                for v in e["variants"].as_array().into_iter().flatten() {
                    lines.insert(self.variant(self.item(&id_key(v)), path));
                }
                self.impls(&e["impls"], path, lines);
            }
            "union" => {
                lines.insert(format!("{attrs}pub union {path}"));
                self.impls(&inner["union"]["impls"], path, lines);
            }
            "trait" => {
                let t = &inner["trait"];
                let bounds = self.bounds(&t["bounds"]);
                let bounds = if bounds.is_empty() { bounds } else { format!(": {bounds}") };
                let unsafety = if t["is_unsafe"] == true { "unsafe " } else { "" };
                lines.insert(format!(
                    "{attrs}pub {unsafety}trait {path}{}{bounds}{}",
                    self.generics(&t["generics"]),
                    self.where_clause(&t["generics"])
                ));
                for member in t["items"].as_array().into_iter().flatten() {
                    if let Some(line) = self.assoc(self.item(&id_key(member)), path, true) {
                        lines.insert(line);
                    }
                }
            }
            "function" => {
                lines.insert(format!("{attrs}{}", self.function(&inner["function"], path)));
            }
            "constant" => {
                let c = &inner["constant"];
                let value = if c["const"]["is_literal"] == true {
                    format!(" = {}", str_of(&c["const"]["expr"]))
                } else {
                    String::new()
                };
                lines.insert(format!("pub const {path}: {}{value}", self.ty(&c["type"])));
            }
            "static" => {
                let s = &inner["static"];
                let m = if s["is_mutable"] == true { "mut " } else { "" };
                lines.insert(format!("pub static {m}{path}: {}", self.ty(&s["type"])));
            }
            "type_alias" => {
                let t = &inner["type_alias"];
                lines.insert(format!(
                    "pub type {path}{}{} = {}",
                    self.generics(&t["generics"]),
                    self.where_clause(&t["generics"]),
                    self.ty(&t["type"])
                ));
            }
            "macro" | "proc_macro" => {
                lines.insert(format!("pub macro {path}!"));
            }
            other => {
                lines.insert(format!("pub {other} {path}"));
            }
        }
    }

    /// A struct, its public fields, inherent items and trait impls.
    fn emit_struct(&self, s: &Value, path: &str, attrs: &str, lines: &mut BTreeSet<String>) {
        let generics = self.generics(&s["generics"]);
        let shape = match &s["kind"] {
            Value::String(unit) if unit == "unit" => ";".to_owned(),
            Value::Object(k) if k.contains_key("tuple") => {
                let fields: Vec<String> = k["tuple"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| {
                        if f.is_null() {
                            "_".to_owned()
                        } else {
                            self.ty(&self.item(&id_key(f))["inner"]["struct_field"])
                        }
                    })
                    .collect();
                format!("({})", fields.join(", "))
            }
            _ => {
                for f in s["kind"]["plain"]["fields"].as_array().into_iter().flatten() {
                    let field = self.item(&id_key(f));
                    lines.insert(format!(
                        "pub {path}::{}: {}",
                        str_of(&field["name"]),
                        self.ty(&field["inner"]["struct_field"])
                    ));
                }
                String::new()
            }
        };
        lines.insert(format!(
            "{attrs}pub struct {path}{generics}{shape}{}",
            self.where_clause(&s["generics"])
        ));
        self.impls(&s["impls"], path, lines);
    }
    /// One enum variant on one line, with its fields.
    fn variant(&self, v: &Value, enum_path: &str) -> String {
        let name = format!("{}pub {enum_path}::{}", attrs(v), str_of(&v["name"]));
        let k = &v["inner"]["variant"]["kind"];
        let field = |f: &Value| self.item(&id_key(f));
        if let Some(fields) = k["tuple"].as_array() {
            let tys: Vec<String> = fields
                .iter()
                .map(|f| {
                    if f.is_null() {
                        "_".to_owned()
                    } else {
                        self.ty(&field(f)["inner"]["struct_field"])
                    }
                })
                .collect();
            format!("{name}({})", tys.join(", "))
        } else if let Some(fields) = k["struct"]["fields"].as_array() {
            let mut parts: Vec<String> = fields
                .iter()
                .map(|f| {
                    let f = field(f);
                    format!("{}: {}", str_of(&f["name"]), self.ty(&f["inner"]["struct_field"]))
                })
                .collect();
            if k["struct"]["has_stripped_fields"] == true {
                parts.push("..".to_owned());
            }
            format!("{name} {{ {} }}", parts.join(", "))
        } else {
            name
        }
    }

    /// Inherent methods and constants (public ones) and explicit trait impls of a type.
    fn impls(&self, impls: &Value, path: &str, lines: &mut BTreeSet<String>) {
        for id in impls.as_array().into_iter().flatten() {
            let imp = &self.item(&id_key(id))["inner"]["impl"];
            if imp["is_synthetic"] == true || !imp["blanket_impl"].is_null() {
                continue;
            }
            if imp["trait"].is_null() {
                for member in imp["items"].as_array().into_iter().flatten() {
                    let member = self.item(&id_key(member));
                    if member["visibility"] == "public"
                        && let Some(line) = self.assoc(member, path, false)
                    {
                        lines.insert(line);
                    }
                }
            } else {
                let negative = if imp["is_negative"] == true { "!" } else { "" };
                lines.insert(format!(
                    "impl{} {negative}{} for {}{}",
                    self.generics(&imp["generics"]),
                    self.path(&imp["trait"]),
                    self.ty(&imp["for"]),
                    self.where_clause(&imp["generics"])
                ));
            }
        }
    }

    /// A trait item or inherent associated item as a line.
    fn assoc(&self, member: &Value, owner: &str, in_trait: bool) -> Option<String> {
        let name = str_of(&member["name"]);
        let path = format!("{owner}::{name}");
        let inner = &member["inner"];
        let line = match kind(member) {
            "function" => {
                let f = &inner["function"];
                let provided = if in_trait && f["has_body"] == true { " (provided)" } else { "" };
                format!("{}{}{provided}", attrs(member), self.function(f, &path))
            }
            "assoc_const" => {
                let c = &inner["assoc_const"];
                let value = c["value"].as_str().map(|v| format!(" = {v}")).unwrap_or_default();
                format!("pub const {path}: {}{value}", self.ty(&c["type"]))
            }
            "assoc_type" => {
                let t = &inner["assoc_type"];
                let bounds = self.bounds(&t["bounds"]);
                let bounds = if bounds.is_empty() { bounds } else { format!(": {bounds}") };
                let default = if t["type"].is_null() {
                    String::new()
                } else {
                    format!(" = {}", self.ty(&t["type"]))
                };
                format!("pub type {path}{}{bounds}{default}", self.generics(&t["generics"]))
            }
            _ => return None,
        };
        Some(line)
    }

    fn function(&self, f: &Value, path: &str) -> String {
        let h = &f["header"];
        let mut quals = String::new();
        for (flag, word) in
            [("is_const", "const "), ("is_async", "async "), ("is_unsafe", "unsafe ")]
        {
            if h[flag] == true {
                quals.push_str(word);
            }
        }
        if let Some(abi) = h["abi"].as_object().and_then(|a| a.keys().next()) {
            let _ = write!(quals, "extern {abi:?} ");
        }
        format!(
            "pub {quals}fn {path}{}{}{}",
            self.generics(&f["generics"]),
            self.signature(&f["sig"]),
            self.where_clause(&f["generics"])
        )
    }

    /// `(inputs) -> output`.
    fn signature(&self, sig: &Value) -> String {
        let mut inputs = Vec::new();
        for input in sig["inputs"].as_array().into_iter().flatten() {
            let (name, ty) = (str_of(&input[0]), &input[1]);
            if name == "self" {
                let r = &ty["borrowed_ref"];
                if ty["generic"] == "Self" {
                    inputs.push("self".to_owned());
                    continue;
                }
                if r["type"]["generic"] == "Self" {
                    let life = r["lifetime"].as_str().map(|l| format!("{l} ")).unwrap_or_default();
                    let m = if r["is_mutable"] == true { "mut " } else { "" };
                    inputs.push(format!("&{life}{m}self"));
                    continue;
                }
            }
            inputs.push(format!("{name}: {}", self.ty(ty)));
        }
        if sig["is_c_variadic"] == true {
            inputs.push("...".to_owned());
        }
        let output = if sig["output"].is_null() {
            String::new()
        } else {
            format!(" -> {}", self.ty(&sig["output"]))
        };
        format!("({}){output}", inputs.join(", "))
    }

    /// `<'a, T: Bound>` (without the synthetic `impl Trait` parameters), or nothing.
    fn generics(&self, g: &Value) -> String {
        let params: Vec<String> = g["params"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| self.generic_param(p))
            .collect();
        if params.is_empty() { String::new() } else { format!("<{}>", params.join(", ")) }
    }

    fn generic_param(&self, p: &Value) -> Option<String> {
        let name = str_of(&p["name"]);
        let k = &p["kind"];
        if let Some(l) = k.get("lifetime") {
            let outlives: Vec<&str> =
                l["outlives"].as_array().into_iter().flatten().map(str_of).collect();
            return Some(if outlives.is_empty() {
                name.to_owned()
            } else {
                format!("{name}: {}", outlives.join(" + "))
            });
        }
        if let Some(t) = k.get("type") {
            if t["is_synthetic"] == true {
                return None;
            }
            let bounds = self.bounds(&t["bounds"]);
            let mut s = name.to_owned();
            if !bounds.is_empty() {
                let _ = write!(s, ": {bounds}");
            }
            if !t["default"].is_null() {
                let _ = write!(s, " = {}", self.ty(&t["default"]));
            }
            return Some(s);
        }
        if let Some(c) = k.get("const") {
            return Some(format!("const {name}: {}", self.ty(&c["type"])));
        }
        Some(name.to_owned())
    }

    fn where_clause(&self, g: &Value) -> String {
        let preds: Vec<String> = g["where_predicates"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                if let Some(b) = p.get("bound_predicate") {
                    format!(
                        "{}{}: {}",
                        self.hrtb(&b["generic_params"]),
                        self.ty(&b["type"]),
                        self.bounds(&b["bounds"])
                    )
                } else if let Some(l) = p.get("lifetime_predicate") {
                    let outlives: Vec<&str> =
                        l["outlives"].as_array().into_iter().flatten().map(str_of).collect();
                    format!("{}: {}", str_of(&l["lifetime"]), outlives.join(" + "))
                } else if let Some(e) = p.get("eq_predicate") {
                    format!("{} = {}", self.ty(&e["lhs"]), self.term(&e["rhs"]))
                } else {
                    p.to_string()
                }
            })
            .collect();
        if preds.is_empty() { String::new() } else { format!(" where {}", preds.join(", ")) }
    }

    /// `for<'a> ` of higher-ranked bounds, or nothing.
    fn hrtb(&self, params: &Value) -> String {
        let params: Vec<String> =
            params.as_array().into_iter().flatten().filter_map(|p| self.generic_param(p)).collect();
        if params.is_empty() { String::new() } else { format!("for<{}> ", params.join(", ")) }
    }

    fn bounds(&self, bounds: &Value) -> String {
        let parts: Vec<String> = bounds
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| {
                if let Some(t) = b.get("trait_bound") {
                    let modifier = match t["modifier"].as_str() {
                        Some("maybe") => "?",
                        Some("maybe_const") => "~const ",
                        _ => "",
                    };
                    format!(
                        "{}{modifier}{}",
                        self.hrtb(&t["generic_params"]),
                        self.path(&t["trait"])
                    )
                } else if let Some(l) = b.get("outlives") {
                    str_of(l).to_owned()
                } else if let Some(u) = b.get("use") {
                    let args: Vec<String> = u
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| match a {
                            Value::String(s) => s.clone(),
                            Value::Object(o) => o.values().map(|v| str_of(v).to_owned()).collect(),
                            _ => a.to_string(),
                        })
                        .collect();
                    format!("use<{}>", args.join(", "))
                } else {
                    b.to_string()
                }
            })
            .collect();
        parts.join(" + ")
    }

    /// A path (`resolved_path` or a trait): its public name and generic arguments.
    fn path(&self, p: &Value) -> String {
        let id = id_key(&p["id"]);
        let written = str_of(&p["path"]);
        // Local items by the path users name them by; other crates' items by their
        // defining path (not as written here, which may be an import or a relative path).
        let name = match (self.public.get(&id), self.paths.get(&id)) {
            (Some(public), _) => public.clone(),
            (None, Some(entry)) => self.alias(join_path(&entry["path"])),
            (None, None) => written.to_owned(),
        };
        format!("{name}{}", self.generic_args(&p["args"]))
    }

    fn generic_args(&self, a: &Value) -> String {
        if let Some(ab) = a.get("angle_bracketed") {
            let mut parts: Vec<String> = ab["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|arg| match arg {
                    Value::String(s) if s == "infer" => "_".to_owned(),
                    _ if arg.get("type").is_some() => self.ty(&arg["type"]),
                    _ if arg.get("lifetime").is_some() => str_of(&arg["lifetime"]).to_owned(),
                    _ if arg.get("const").is_some() => str_of(&arg["const"]["expr"]).to_owned(),
                    _ => arg.to_string(),
                })
                .collect();
            for c in ab["constraints"].as_array().into_iter().flatten() {
                let name = format!("{}{}", str_of(&c["name"]), self.generic_args(&c["args"]));
                let b = &c["binding"];
                if let Some(eq) = b.get("equality") {
                    parts.push(format!("{name} = {}", self.term(eq)));
                } else {
                    parts.push(format!("{name}: {}", self.bounds(&b["constraint"])));
                }
            }
            return if parts.is_empty() {
                String::new()
            } else {
                format!("<{}>", parts.join(", "))
            };
        }
        if let Some(p) = a.get("parenthesized") {
            let inputs: Vec<String> =
                p["inputs"].as_array().into_iter().flatten().map(|t| self.ty(t)).collect();
            let output = if p["output"].is_null() {
                String::new()
            } else {
                format!(" -> {}", self.ty(&p["output"]))
            };
            return format!("({}){output}", inputs.join(", "));
        }
        if a.get("return_type_notation").is_some() {
            return "(..)".to_owned();
        }
        String::new()
    }

    fn term(&self, t: &Value) -> String {
        if let Some(ty) = t.get("type") {
            self.ty(ty)
        } else {
            str_of(&t["constant"]["expr"]).to_owned()
        }
    }

    /// A type as Rust source.
    fn ty(&self, t: &Value) -> String {
        let Some((k, v)) = t.as_object().and_then(|o| o.iter().next()) else {
            return match t.as_str() {
                Some("infer") => "_".to_owned(),
                _ => t.to_string(),
            };
        };
        match k.as_str() {
            "resolved_path" => self.path(v),
            "generic" | "primitive" => str_of(v).to_owned(),
            "dyn_trait" => {
                let mut parts: Vec<String> = v["traits"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        format!("{}{}", self.hrtb(&p["generic_params"]), self.path(&p["trait"]))
                    })
                    .collect();
                if let Some(l) = v["lifetime"].as_str() {
                    parts.push(l.to_owned());
                }
                format!("dyn {}", parts.join(" + "))
            }
            "function_pointer" => {
                let h = &v["header"];
                let unsafety = if h["is_unsafe"] == true { "unsafe " } else { "" };
                format!(
                    "{}{unsafety}fn{}",
                    self.hrtb(&v["generic_params"]),
                    self.signature(&v["sig"])
                )
            }
            "tuple" => {
                let tys: Vec<String> =
                    v.as_array().into_iter().flatten().map(|t| self.ty(t)).collect();
                if tys.len() == 1 {
                    format!("({},)", tys[0])
                } else {
                    format!("({})", tys.join(", "))
                }
            }
            "slice" => format!("[{}]", self.ty(v)),
            "array" => format!("[{}; {}]", self.ty(&v["type"]), str_of(&v["len"])),
            "pat" => self.ty(&v["type"]),
            "impl_trait" => format!("impl {}", self.bounds(v)),
            "raw_pointer" => {
                let m = if v["is_mutable"] == true { "mut" } else { "const" };
                format!("*{m} {}", self.ty(&v["type"]))
            }
            "borrowed_ref" => {
                let life = v["lifetime"].as_str().map(|l| format!("{l} ")).unwrap_or_default();
                let m = if v["is_mutable"] == true { "mut " } else { "" };
                format!("&{life}{m}{}", self.ty(&v["type"]))
            }
            "qualified_path" => {
                let name = format!("{}{}", str_of(&v["name"]), self.generic_args(&v["args"]));
                let self_ty = self.ty(&v["self_type"]);
                if v["trait"].is_null() {
                    format!("{self_ty}::{name}")
                } else {
                    format!("<{self_ty} as {}>::{name}", self.path(&v["trait"]))
                }
            }
            _ => t.to_string(),
        }
    }
}

/// The names a crate's root module makes public (items and re-exports).
fn root_names(json: &Value) -> BTreeSet<String> {
    let index = &json["index"];
    let root = &index[id_key(&json["root"])];
    let mut names = BTreeSet::new();
    for id in root["inner"]["module"]["items"].as_array().into_iter().flatten() {
        let item = &index[id_key(id)];
        if item["visibility"] != "public" {
            continue;
        }
        let name = if kind(item) == "use" { &item["inner"]["use"]["name"] } else { &item["name"] };
        if let Some(name) = name.as_str() {
            names.insert(name.to_owned());
        }
    }
    names
}

/// The kind of an item (`struct`, `use`, …): the one key of its `inner`.
fn kind(item: &Value) -> &str {
    item["inner"].as_object().and_then(|o| o.keys().next()).map_or("", String::as_str)
}

/// `#[non_exhaustive] ` when the item carries it: it changes what users may write.
fn attrs(item: &Value) -> &'static str {
    let non_exhaustive = item["attrs"].as_array().into_iter().flatten().any(|a| {
        a == "non_exhaustive"
            || a.get("non_exhaustive").is_some()
            || a.as_str() == Some("#[non_exhaustive]")
    });
    if non_exhaustive { "#[non_exhaustive] " } else { "" }
}

/// An id (a JSON number or string) as the key of `index` and `paths`.
fn id_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn join_path(p: &Value) -> String {
    p.as_array().into_iter().flatten().map(str_of).collect::<Vec<_>>().join("::")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::{line_diff, listing};

    /// A hand-written rustdoc JSON: a root module with a function (re-exported from a
    /// private module), a struct with one public field and a method, and another crate's
    /// re-exported item.
    fn sample() -> serde_json::Value {
        let fn_item = json!({"function": {
            "sig": {"inputs": [["name", {"borrowed_ref": {"lifetime": null, "is_mutable": false,
                "type": {"primitive": "str"}}}]],
                "output": {"resolved_path": {"path": "Thing", "id": 3, "args": null}},
                "is_c_variadic": false},
            "generics": {"params": [], "where_predicates": []},
            "header": {"is_const": false, "is_unsafe": false, "is_async": true, "abi": "Rust"},
            "has_body": true}});
        json!({
            "root": 0, "format_version": 57,
            "paths": {"9": {"crate_id": 5, "path": ["url", "Url"], "kind": "struct"}},
            "index": {
                "0": {"name": "demo", "visibility": "public", "attrs": [],
                      "inner": {"module": {"items": [1, 2, 3, 8]}}},
                "1": {"name": "inner", "visibility": "default", "attrs": [],
                      "inner": {"module": {"items": [4]}}},
                "2": {"name": null, "visibility": "public", "attrs": [],
                      "inner": {"use": {"source": "inner::make", "name": "make", "id": 4, "is_glob": false}}},
                "3": {"name": "Thing", "visibility": "public", "attrs": ["non_exhaustive"],
                      "inner": {"struct": {"kind": {"plain": {"fields": [5], "has_stripped_fields": true}},
                        "generics": {"params": [], "where_predicates": []}, "impls": [6]}}},
                "4": {"name": "make", "visibility": "public", "attrs": [], "inner": fn_item},
                "5": {"name": "size", "visibility": "public", "attrs": [],
                      "inner": {"struct_field": {"primitive": "usize"}}},
                "6": {"name": null, "visibility": "default", "attrs": [],
                      "inner": {"impl": {"trait": null, "items": [7], "is_synthetic": false,
                        "blanket_impl": null, "generics": {"params": [], "where_predicates": []},
                        "for": {"resolved_path": {"path": "Thing", "id": 3, "args": null}}}}},
                "7": {"name": "len", "visibility": "public", "attrs": [], "inner": {"function": {
                    "sig": {"inputs": [["self", {"borrowed_ref": {"lifetime": null, "is_mutable": false,
                        "type": {"generic": "Self"}}}]], "output": {"primitive": "usize"},
                        "is_c_variadic": false},
                    "generics": {"params": [], "where_predicates": []},
                    "header": {"is_const": false, "is_unsafe": false, "is_async": false, "abi": "Rust"},
                    "has_body": true}}},
                "8": {"name": null, "visibility": "public", "attrs": [],
                      "inner": {"use": {"source": "url::Url", "name": "Url", "id": 9, "is_glob": false}}}
            }
        })
    }

    #[test]
    fn lists_items_under_their_public_paths_sorted() {
        let text = listing("demo", &sample(), HashMap::new()).unwrap();
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                "#[non_exhaustive] pub struct demo::Thing",
                "pub async fn demo::make(name: &str) -> demo::Thing",
                "pub demo::Thing::size: usize",
                "pub fn demo::Thing::len(&self) -> usize",
                "pub use demo::Url = struct url::Url",
            ]
        );
    }

    #[test]
    fn diff_names_added_and_removed_lines() {
        let diff = line_diff("a\nb\nc\n", "a\nc\nd\n");
        assert_eq!(diff, "-b\n+d\n");
    }
}
