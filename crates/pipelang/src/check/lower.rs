//! AST -> typed pipeline, item by item. Each problem becomes a diagnostic and lowering goes
//! on with what it has, so one mistake does not hide the next.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use crate::diag::{Code, Diagnostic, Diagnostics, Fix};
use crate::syntax::{Args, Expr, ExprKind, File, Ident, Item, Span};

use super::fields::Fields;
use super::ir::*;
use super::names::{NameKind, Symbols, did_you_mean, suggestion};
use super::values;
use crate::schema::{self, decoder, pipeline, projector, vit};

pub struct Lower<'a> {
    pub file: &'a File,
    pub symbols: Symbols,
    /// Names that did not resolve so far: a stage that lost one skips the checks that need
    /// all of its models (they would report consequences of the unknown name).
    pub unresolved: usize,
    pub diags: Diagnostics,
    /// Names referenced anywhere (for unused-item warnings).
    pub used: HashSet<String>,
    /// Mixtures lowered so far (named ones and stages'), each once.
    pub mixes: super::lower_mix::Mixtures,
    /// Each item's index in `file.items` by name (the first of a name): a mixture finds the
    /// stage or `mix` item it copies without scanning every item.
    pub items: HashMap<&'a str, usize>,
}

impl<'a> Lower<'a> {
    pub fn new(file: &'a File) -> Self {
        let mut diags = Diagnostics::default();
        let symbols = Symbols::collect(file, &mut diags);
        let mut items = HashMap::new();
        for (i, item) in file.items.iter().enumerate() {
            items.entry(item.name().name.as_str()).or_insert(i);
        }
        Lower {
            file,
            symbols,
            diags,
            used: HashSet::new(),
            unresolved: 0,
            mixes: Default::default(),
            items,
        }
    }

    /// Resolves a reference to one item of `want` kind: a group of variants is refused.
    pub fn resolve<I: Idx>(&mut self, name: &str, span: Span, want: NameKind) -> Option<I> {
        if let Some(s) = self.symbols.map.get(name)
            && s.kind == want
            && s.count > 1
        {
            let first = format!("{name}[");
            let mut variants: Vec<&str> = self
                .symbols
                .map
                .keys()
                .filter(|k| k.starts_with(&first))
                .map(String::as_str)
                .collect();
            variants.sort();
            self.diags.push(
                Diagnostic::new(
                    Code::VARIANT_GROUP,
                    format!("`{name}` is a group of {} variants, not one stage", s.count),
                )
                .label(span, "one stage is due here")
                .label(s.span, format!("`{name}` varies here"))
                .help(format!(
                    "name one variant ({}) or a soup of them (`stage NAME = average({name})`); a \
                     group stands for all of its variants only in `after` and `average`",
                    variants.join(", ")
                )),
            );
            self.mark_used(name);
            self.unresolved += 1;
            return None;
        }
        self.resolve_any(name, span, want)
    }

    /// Records a reference to `name` (for unused-item warnings); a name is copied once, not
    /// at every one of its uses.
    pub fn mark_used(&mut self, name: &str) {
        if !self.used.contains(name) {
            self.used.insert(name.to_string());
        }
    }

    /// Resolves a reference to a name of `want` kind; a group gives its first variant.
    pub fn resolve_any<I: Idx>(&mut self, name: &str, span: Span, want: NameKind) -> Option<I> {
        self.mark_used(name);
        match self.symbols.map.get(name) {
            Some(s) if s.kind == want => Some(I::new(s.id)),
            Some(s) => {
                let s = *s;
                let fix =
                    did_you_mean(name, self.symbols.names_of(want)).map(|to| Fix::rename(span, to));
                self.diags.push(
                    Diagnostic::new(
                        Code::WRONG_NAME_KIND,
                        format!("`{name}` is {}, not {}", s.kind.article(), want.article()),
                    )
                    .label(span, format!("{} is due here", want.article()))
                    .label(
                        s.span,
                        format!("`{name}` is declared here as {}", s.kind.article()),
                    )
                    .help(suggestion(
                        name,
                        self.symbols.names_of(want).collect::<Vec<_>>(),
                        want.word(),
                    ))
                    .fix(fix),
                );
                None
            }
            None => {
                let fix =
                    did_you_mean(name, self.symbols.names_of(want)).map(|to| Fix::rename(span, to));
                // The name meant is used: no "never used" warning on top of the cause.
                if let Some(meant) =
                    did_you_mean(name, self.symbols.names_of(want)).map(str::to_string)
                {
                    self.mark_used(&meant);
                }
                self.unresolved += 1;
                let help = suggestion(
                    name,
                    self.symbols.names_of(want).collect::<Vec<_>>(),
                    want.word(),
                );
                self.diags.push(
                    Diagnostic::new(
                        Code::UNDECLARED,
                        format!("{} `{name}` is not declared", capital(want.article())),
                    )
                    .label(span, "not declared")
                    .help(help)
                    .fix(fix),
                );
                None
            }
        }
    }

    pub fn ident_ref<I: Idx>(&mut self, e: &Expr, field: &str, want: NameKind) -> Option<Sp<I>> {
        match &e.kind {
            ExprKind::Ident(n) => self.resolve(n, e.span, want).map(|id| Sp::new(id, e.span)),
            _ => {
                self.diags.push(
                    Diagnostic::new(
                        Code::TYPE,
                        format!(
                            "`{field}` expects the name of {}, found {}",
                            want.article(),
                            values::found(e)
                        ),
                    )
                    .label(e.span, format!("{} is due here", want.article()))
                    .help(format!("write the name of {}", want.article())),
                );
                None
            }
        }
    }

    /// `[a, b]` (or a single name) of references of one kind; repeats are reported.
    pub fn ref_list<I: Idx>(&mut self, e: &Expr, field: &str, want: NameKind) -> Vec<Sp<I>> {
        let items: Vec<&Expr> = match &e.kind {
            ExprKind::List(v) => v.iter().collect(),
            _ => vec![e],
        };
        let mut out: Vec<Sp<I>> = vec![];
        for it in items {
            if let Some(r) = self.ident_ref(it, field, want) {
                if let Some(prev) = out.iter().find(|p| p.value == r.value) {
                    self.diags.push(
                        Diagnostic::new(
                            Code::DUPLICATE,
                            format!(
                                "`{}` is listed twice in `{field}`",
                                it.as_ident().unwrap_or("")
                            ),
                        )
                        .label(it.span, "listed again")
                        .label(prev.span, "first listed here")
                        .help("remove the repeat"),
                    );
                    continue;
                }
                out.push(r);
            }
        }
        out
    }

    pub fn lower(mut self) -> (Option<Pipeline>, Lower<'a>) {
        let file = self.file;
        let pipelines: Vec<_> = file
            .items
            .iter()
            .filter_map(|i| {
                if let Item::Pipeline(p) = i {
                    Some(p)
                } else {
                    None
                }
            })
            .collect();
        if pipelines.is_empty() {
            self.diags.push(
                Diagnostic::new(Code::NO_PIPELINE, "the file has no `pipeline` block")
                    .label(
                        Span::new(0, 0),
                        "expected `pipeline NAME { ... }` in this file",
                    )
                    .help("add `pipeline NAME { seed = 1, batch = 16, seq_len = 8K }`"),
            );
        }
        for extra in pipelines.iter().skip(1) {
            self.diags.push(
                Diagnostic::new(Code::NO_PIPELINE, "a file holds one `pipeline` block")
                    .label(extra.name.span, "second pipeline block")
                    .label(pipelines[0].name.span, "first one here")
                    .help("merge the two blocks or split the file"),
            );
        }
        let mut p = Pipeline {
            name: String::new(),
            name_span: Span::default(),
            seed: Sp::new(pipeline::DEFAULT_SEED, Span::default()),
            batch: Sp::new(1, Span::default()),
            seq_len: Sp::new(1024, Span::default()),
            seq_len_written: false,
            models: IndexVec::new(),
            data: IndexVec::new(),
            schedules: IndexVec::new(),
            // One per stage item (variants add more): a large file does not regrow it.
            stages: IndexVec::from_raw(Vec::with_capacity(
                file.items
                    .iter()
                    .filter(|i| matches!(i, Item::Stage(_)))
                    .count(),
            )),
            mixtures: vec![],
            profiles: vec![],
            data_root: None,
            sample_data: false,
            profile: None,
            optimizer: Sp::new(Optimizer::default(), Span::default()),
        };
        if let Some(pi) = pipelines.first() {
            self.pipeline_block(pi, &mut p);
        }
        for item in &file.items {
            match item {
                Item::Model(m) => {
                    let model = self.model(m);
                    p.models.push(model);
                }
                Item::Data(d) => {
                    let data = self.data(d);
                    p.data.push(data);
                }
                Item::Schedule(s) => {
                    let segs = self.lr_chain(&s.value, true).unwrap_or_default();
                    p.schedules.push(Schedule {
                        name: s.name.name.clone(),
                        name_span: s.name.span,
                        span: s.span,
                        segments: segs,
                    });
                }
                Item::Mix(m) => {
                    let named = self.named_mix(m);
                    p.mixtures.push(named);
                }
                Item::Profile(pr) => {
                    if let Some(prev) = p.profiles.iter().find(|x| x.name == pr.name.name) {
                        self.diags.push(
                            Diagnostic::new(
                                Code::DUPLICATE,
                                format!("profile `{}` is declared twice", pr.name.name),
                            )
                            .label(pr.name.span, "second declaration")
                            .label(prev.name_span, "first declared here")
                            .help("rename or merge the two profiles"),
                        );
                    }
                    p.profiles.push(ProfileDecl {
                        name: pr.name.name.clone(),
                        name_span: pr.name.span,
                        span: pr.span,
                    });
                }
                _ => {}
            }
        }
        // Placeholders keep ids stable when a model or data item failed to lower.
        for item in &file.items {
            if let Item::Stage(s) = item {
                if let Some(a) = &s.average {
                    let soup = self.soup(s, a);
                    p.stages.push(soup);
                    continue;
                }
                let stage = self.stage(s);
                for v in self.variants(s, stage) {
                    p.stages.push(v);
                }
            }
        }
        self.soup_models(&mut p);
        let ok = !pipelines.is_empty();
        (ok.then_some(p), self)
    }

    fn pipeline_block(&mut self, pi: &crate::syntax::PipelineItem, p: &mut Pipeline) {
        let fields = Fields::collect(
            &self.file.errors,
            &pi.body,
            &pipeline::BLOCK,
            &mut self.diags,
        );
        p.name = pi.name.name.clone();
        p.name_span = pi.name.span;
        let at = pi.name.span;
        if let Some(v) = self.opt_count(&fields, &pipeline::SEED) {
            p.seed = v;
        }
        p.optimizer = Sp::new(Optimizer::default(), pi.name.span);
        if let Some(f) = fields.get(&pipeline::OPTIMIZER)
            && let Some(args) = self.optimizer(&f.value)
        {
            let mut o = Optimizer::default();
            for (i, v) in args.value {
                o.set(i, v);
            }
            p.optimizer = Sp::new(o, args.span);
        }
        if let Some((f, sample)) = fields.data_root(&mut self.diags) {
            p.data_root = values::string(&mut self.diags, &f.value, &f.key.name);
            p.sample_data = sample;
        }
        let what = pipeline::BLOCK.what;
        if let Some(v) = self.req_count(&fields, &pipeline::BATCH, at, what) {
            p.batch = v;
        }
        if let Some(f) = fields.require(&pipeline::SEQ_LEN, at, what, &mut self.diags)
            && let Some(v) = values::length(&mut self.diags, &f.value, pipeline::SEQ_LEN.name)
        {
            p.seq_len = v;
            p.seq_len_written = true;
        }
    }

    fn model(&mut self, m: &crate::syntax::ModelItem) -> Model {
        let kind = match m.kind.name.as_str() {
            "decoder" => ModelKind::Decoder(self.decoder(m)),
            "vit" => ModelKind::Vit(self.vit(m)),
            "projector" => ModelKind::Projector(self.projector(m)),
            other => {
                let kinds: Vec<&str> = schema::MODELS.iter().map(|b| b.keyword).collect();
                self.unknown_kind(&m.kind, "model kind", &kinds);
                let _ = other;
                ModelKind::Decoder(self.decoder_defaults(m.name.span))
            }
        };
        if m.kind.name != "projector"
            && let Some(a) = &m.args
        {
            self.diags.push(
                Diagnostic::new(
                    Code::ARGUMENTS,
                    format!("a {} model takes no arguments", m.kind.name),
                )
                .label(a.span, "unexpected arguments")
                .help("only `projector(FROM -> TO)` takes arguments"),
            );
        }
        // Every kind has `init` (its table lists it, so it is never an unknown field).
        let init = m
            .body
            .entries
            .iter()
            .find_map(|e| match e {
                crate::syntax::Entry::Field(f) if f.key.name == schema::model::INIT.name => Some(f),
                _ => None,
            })
            .and_then(|f| {
                super::values::string(&mut self.diags, &f.value, schema::model::INIT.name)
            });
        Model {
            name: m.name.name.clone(),
            name_span: m.name.span,
            span: m.span,
            kind,
            init,
        }
    }

    pub fn unknown_kind(&mut self, kind: &Ident, what: &str, known: &[&str]) {
        let help = match super::names::did_you_mean(&kind.name, known.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("the {what}s are: {}", known.join(", ")),
        };
        self.diags.push(
            Diagnostic::new(
                Code::UNKNOWN_KIND,
                format!("unknown {what} `{}`", kind.name),
            )
            .label(kind.span, format!("not a {what}"))
            .help(help)
            .fix(
                super::names::did_you_mean(&kind.name, known.iter().copied())
                    .map(|to| Fix::rename(kind.span, to)),
            ),
        );
    }

    fn decoder_defaults(&self, at: Span) -> DecoderSpec {
        DecoderSpec {
            vocab: Sp::new(256, at),
            d_model: Sp::new(64, at),
            layers: Sp::new(1, at),
            heads: Sp::new(1, at),
            experts: None,
            active_experts: None,
            rope_base: Sp::new(decoder::DEFAULT_ROPE_BASE, at),
            rope_scaling: Sp::new(RopeScaling::None, at),
            mlp: Sp::new(Mlp::SwiGlu, at),
            kv_heads: None,
            ffn: None,
            tie_embeddings: Sp::new(false, at),
            qk_norm: Sp::new(false, at),
            shared_experts: None,
            dense_layers: None,
        }
    }

    fn req_count(
        &mut self,
        fields: &Fields,
        field: &schema::Field,
        at: Span,
        what: &str,
    ) -> Option<Sp<u64>> {
        let f = fields.require(field, at, what, &mut self.diags)?;
        self.count(&f.value, field)
    }

    pub fn opt_count(&mut self, fields: &Fields, field: &schema::Field) -> Option<Sp<u64>> {
        let f = fields.get(field)?;
        self.count(&f.value, field)
    }

    pub fn count(&mut self, e: &Expr, field: &schema::Field) -> Option<Sp<u64>> {
        let min = match field.ty {
            schema::Ty::Count { min } => min,
            // A batch's plain form: sequences per step.
            schema::Ty::Batch => 1,
            _ => unreachable!("`{}` is not a count", field.name),
        };
        values::count(&mut self.diags, e, field.name, min)
    }

    fn decoder(&mut self, m: &crate::syntax::ModelItem) -> DecoderSpec {
        let f = Fields::collect(&self.file.errors, &m.body, &decoder::BLOCK, &mut self.diags);
        let at = m.name.span;
        let mut d = self.decoder_defaults(at);
        let what = format!("decoder `{}`", m.name.name);
        if let Some(v) = self.req_count(&f, &decoder::VOCAB, at, &what) {
            d.vocab = v;
        }
        if let Some(v) = self.req_count(&f, &decoder::D_MODEL, at, &what) {
            d.d_model = v;
        }
        if let Some(v) = self.req_count(&f, &decoder::LAYERS, at, &what) {
            d.layers = v;
        }
        if let Some(v) = self.req_count(&f, &decoder::HEADS, at, &what) {
            d.heads = v;
        }
        d.experts = self.opt_count(&f, &decoder::EXPERTS);
        d.active_experts = self.opt_count(&f, &decoder::ACTIVE_EXPERTS);
        if let (Some(e), None) = (d.experts, d.active_experts) {
            self.diags.push(
                Diagnostic::new(
                    Code::MISSING_FIELD,
                    format!("`{}` has experts but no `active_experts`", m.name.name),
                )
                .label(e.span, format!("{} experts", e.value))
                .help("add `active_experts = K`: how many experts each token is routed to"),
            );
        }
        if let Some(a) = d.active_experts
            && f.get(&decoder::EXPERTS).is_none()
        {
            self.diags.push(
                Diagnostic::new(Code::MISSING_FIELD, "`active_experts` without `experts`")
                    .label(a.span, "active experts of a dense model")
                    .help("add `experts = N` for a mixture of experts, or remove `active_experts`"),
            );
        }
        if let Some(x) = f.get(&decoder::ROPE_BASE)
            && let Some(v) = values::number(&mut self.diags, &x.value, decoder::ROPE_BASE.name)
        {
            if v.value <= 0.0 {
                self.diags.push(
                    Diagnostic::new(Code::RANGE, "`rope_base` must be above 0")
                        .label(v.span, "not positive")
                        .help("RoPE bases are large positive numbers such as `10_000`"),
                );
            } else {
                d.rope_base = v;
            }
        }
        if let Some(x) = f.get(&decoder::ROPE_SCALING)
            && let Some(v) = self.rope_scaling(&x.value)
        {
            d.rope_scaling = v;
        }
        if let Some(x) = f.get(&decoder::MLP) {
            match x.value.as_ident() {
                Some("swiglu") => d.mlp = Sp::new(Mlp::SwiGlu, x.value.span),
                Some("gelu") => d.mlp = Sp::new(Mlp::Gelu, x.value.span),
                _ => self.diags.push(
                    Diagnostic::new(Code::UNKNOWN_KIND, "unknown `mlp` kind")
                        .label(x.value.span, "expected `swiglu` or `gelu`")
                        .help("write `mlp = swiglu` or `mlp = gelu`"),
                ),
            }
        }
        d.kv_heads = self.opt_count(&f, &decoder::KV_HEADS);
        d.ffn = self.opt_count(&f, &decoder::FFN);
        d.shared_experts = self.opt_count(&f, &decoder::SHARED_EXPERTS);
        d.dense_layers = self.opt_count(&f, &decoder::DENSE_LAYERS);
        for (field, slot) in [
            (&decoder::TIE_EMBEDDINGS, &mut d.tie_embeddings),
            (&decoder::QK_NORM, &mut d.qk_norm),
        ] {
            if let Some(x) = f.get(field) {
                match x.value.as_ident() {
                    Some("true") => *slot = Sp::new(true, x.value.span),
                    Some("false") => *slot = Sp::new(false, x.value.span),
                    _ => self.diags.push(
                        Diagnostic::new(
                            Code::TYPE,
                            format!("`{}` is `true` or `false`", field.name),
                        )
                        .label(x.value.span, "expected `true` or `false`")
                        .help(format!(
                            "write `{} = true` or `{} = false`",
                            field.name, field.name
                        )),
                    ),
                }
            }
        }
        for (field, v) in [
            (&decoder::SHARED_EXPERTS, d.shared_experts),
            (&decoder::DENSE_LAYERS, d.dense_layers),
        ] {
            if let (Some(v), None) = (v, d.experts) {
                self.diags.push(
                    Diagnostic::new(Code::MISSING_FIELD, format!("`{}` without `experts`", field.name))
                        .label(v.span, format!("`{}` of a dense model", field.name))
                        .help(format!(
                            "add `experts = N` (and `active_experts = K`) for a mixture of experts, or remove `{}`",
                            field.name
                        )),
                );
            }
        }
        d
    }

    fn vit(&mut self, m: &crate::syntax::ModelItem) -> VitSpec {
        let f = Fields::collect(&self.file.errors, &m.body, &vit::BLOCK, &mut self.diags);
        let at = m.name.span;
        let what = format!("vit `{}`", m.name.name);
        let one = Sp::new(1, at);
        VitSpec {
            patch: self.req_count(&f, &vit::PATCH, at, &what).unwrap_or(one),
            d_model: self.req_count(&f, &vit::D_MODEL, at, &what).unwrap_or(one),
            layers: self.req_count(&f, &vit::LAYERS, at, &what).unwrap_or(one),
            heads: self.req_count(&f, &vit::HEADS, at, &what).unwrap_or(one),
            max_image_side: self
                .opt_count(&f, &vit::MAX_IMAGE_SIDE)
                .unwrap_or(Sp::new(vit::DEFAULT_MAX_IMAGE_SIDE, at)),
        }
    }

    fn projector(&mut self, m: &crate::syntax::ModelItem) -> ProjectorSpec {
        let f = Fields::collect(
            &self.file.errors,
            &m.body,
            &projector::BLOCK,
            &mut self.diags,
        );
        let at = m.name.span;
        let mut spec = ProjectorSpec {
            // Placeholders until the arguments resolve; a projector without them is an error.
            from: Sp::new(ModelId::new(u32::MAX as usize), at),
            to: Sp::new(ModelId::new(u32::MAX as usize), at),
            pixel_shuffle: Sp::new(projector::DEFAULT_PIXEL_SHUFFLE, at),
        };
        match m.args.as_ref().map(|a| (a, a.args.as_slice())) {
            Some((_, [arg]))
                if arg.name.is_none() && matches!(arg.value.kind, ExprKind::Transition(..)) =>
            {
                let ExprKind::Transition(a, b) = &arg.value.kind else {
                    unreachable!()
                };
                if let Some(id) = self.ident_ref(a, "projector", NameKind::Model) {
                    spec.from = id;
                }
                if let Some(id) = self.ident_ref(b, "projector", NameKind::Model) {
                    spec.to = id;
                }
            }
            other => {
                let span = other.map_or(m.kind.span, |(a, _)| a.span);
                self.diags.push(
                    Diagnostic::new(Code::ARGUMENTS, "a projector names the models it connects")
                        .label(span, "expected `(VIT -> DECODER)`")
                        .help("write `projector(vit -> llm)`"),
                );
            }
        }
        if let Some(v) = self.opt_count(&f, &projector::PIXEL_SHUFFLE) {
            spec.pixel_shuffle = v;
        }
        spec
    }

    fn data(&mut self, d: &crate::syntax::DataItem) -> Data {
        let kind = match d.kind.name.as_str() {
            "text" => DataKind::Text,
            "image_text" => DataKind::ImageText,
            "interleaved" => DataKind::Interleaved,
            "video" => DataKind::Video,
            _ => {
                self.unknown_kind(&d.kind, "data kind", schema::data::KINDS);
                DataKind::Text
            }
        };
        let mut globs = vec![];
        let mut tokenizer = None;
        let mut column = None;
        let mut caption = None;
        for arg in &d.args.args {
            match arg.name.as_ref().map(|n| n.name.as_str()) {
                None => globs.extend(values::string(&mut self.diags, &arg.value, "files")),
                Some(n) if n == schema::data::TOKENIZER.name => {
                    tokenizer = values::string(&mut self.diags, &arg.value, n)
                }
                Some(n) if n == schema::data::COLUMN.name => {
                    column = values::string(&mut self.diags, &arg.value, n)
                }
                Some(n) if n == schema::data::CAPTION.name => {
                    caption = values::string(&mut self.diags, &arg.value, n)
                }
                Some(other) => self.diags.push(
                    Diagnostic::new(
                        Code::ARGUMENTS,
                        format!("a data source has no argument `{other}`"),
                    )
                    .label(arg.span, "unknown argument")
                    .help(
                        "data sources take file globs, `tokenizer = \"tokenizer.json\"`, \
                         `column = \"text\"` (Parquet) and `caption = \"caption\"` (WebDataset \
                         .json)",
                    ),
                ),
            }
        }
        if let Some(body) = &d.body {
            let f = Fields::collect(
                &self.file.errors,
                body,
                &schema::data::BLOCK,
                &mut self.diags,
            );
            if let Some(x) = f.get(&schema::data::TOKENIZER) {
                tokenizer = values::string(&mut self.diags, &x.value, &x.key.name);
            }
            if let Some(x) = f.get(&schema::data::COLUMN) {
                column = values::string(&mut self.diags, &x.value, &x.key.name);
            }
            if let Some(x) = f.get(&schema::data::CAPTION) {
                caption = values::string(&mut self.diags, &x.value, &x.key.name);
            }
        }
        if globs.is_empty() {
            self.diags.push(
                Diagnostic::new(
                    Code::ARGUMENTS,
                    format!("data source `{}` names no files", d.name.name),
                )
                .label(d.args.span, "expected at least one file glob")
                .help(format!("write `{}(\"corpus/*.jsonl\")`", d.kind.name)),
            );
        }
        Data {
            name: d.name.name.clone(),
            name_span: d.name.span,
            span: d.span,
            kind,
            globs,
            tokenizer,
            column,
            caption,
        }
    }

    /// Named and positional arguments against a parameter list; reports unknown, repeated and
    /// missing ones. Returns the argument expressions in parameter order.
    pub fn bind<'e>(
        &mut self,
        fname: &Ident,
        args: &'e Args,
        params: &[&str],
        required: &[&str],
    ) -> Vec<Option<&'e Expr>> {
        let mut out: Vec<Option<&Expr>> = vec![None; params.len()];
        let mut next_pos = 0;
        for arg in &args.args {
            let idx = match &arg.name {
                Some(n) => match params.iter().position(|p| *p == n.name) {
                    Some(i) => i,
                    None => {
                        let help = match super::names::did_you_mean(&n.name, params.iter().copied())
                        {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => format!("`{}` takes: {}", fname.name, params.join(", ")),
                        };
                        self.diags.push(
                            Diagnostic::new(
                                Code::ARGUMENTS,
                                format!("`{}` has no argument `{}`", fname.name, n.name),
                            )
                            .label(n.span, "unknown argument")
                            .help(help)
                            .fix(
                                super::names::did_you_mean(&n.name, params.iter().copied())
                                    .map(|to| Fix::rename(n.span, to)),
                            ),
                        );
                        continue;
                    }
                },
                None => {
                    if next_pos >= params.len() {
                        self.diags.push(
                            Diagnostic::new(
                                Code::ARGUMENTS,
                                format!(
                                    "`{}` takes at most {} arguments",
                                    fname.name,
                                    params.len()
                                ),
                            )
                            .label(arg.span, "one argument too many")
                            .help(format!(
                                "`{}` takes: {}",
                                fname.name,
                                params.join(", ")
                            )),
                        );
                        continue;
                    }
                    next_pos
                }
            };
            if out[idx].is_some() {
                self.diags.push(
                    Diagnostic::new(
                        Code::ARGUMENTS,
                        format!(
                            "argument `{}` of `{}` is given twice",
                            params[idx], fname.name
                        ),
                    )
                    .label(arg.span, "given again")
                    .help("remove one of the two"),
                );
                continue;
            }
            out[idx] = Some(&arg.value);
            next_pos = idx + 1;
        }
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|r| out[params.iter().position(|p| p == r).unwrap()].is_none())
            .collect();
        if !missing.is_empty() {
            self.diags.push(
                Diagnostic::new(
                    Code::ARGUMENTS,
                    format!(
                        "`{}` is missing {}",
                        fname.name,
                        missing
                            .iter()
                            .map(|m| format!("`{m}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .label(args.span, "missing arguments")
                .help(format!("`{}` takes: {}", fname.name, params.join(", "))),
            );
        }
        out
    }
}

pub fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or(String::new(), |f| {
        f.to_uppercase().collect::<String>() + c.as_str()
    })
}
