//! Shadow models: any number of model versions scored live beside the active one. Each one scores
//! every message the active model does, from its own fold states, and stores its score per lead
//! and version; it never writes history, queues a webhook or an alert, or marks a CRM sync.
//! Promotion is activation. A new shadow is backfilled by the thread `shadow-{version}` (every
//! lead it has not scored yet, from its history); the scheduler applies its time-driven changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;

use leadscore_core::CheckedModel;
use leadscore_core::time::Millis;
use leadscore_store::{StoreError, Tx};

use crate::app::{App, check_source};
use crate::error::{Code, ServiceError};
use crate::models::{invalid_model, model_not_found};
use crate::scheduler::rescore_batch_or_each;
use crate::scoring::{ActiveModel, Fresh, rescore_shadow};

/// Leads a shadow backfill scores per transaction.
const BACKFILL_CHUNK: usize = 500;

/// A shadow model and how far it has got.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShadowStatus {
    pub version: i64,
    pub name: String,
    /// Scored live beside the active model.
    pub shadow: bool,
    /// Leads it has scored (all of them once its backfill is done).
    pub scored: u64,
    /// Leads stored.
    pub leads: u64,
}

/// How a shadow model's stages compare with the active model's, over every stored lead.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShadowComparison {
    pub version: i64,
    pub name: String,
    pub active_version: i64,
    pub active_name: String,
    /// Leads scored by both models.
    pub leads: u64,
    /// Leads the shadow has not scored yet (its backfill is running).
    pub not_scored: u64,
    /// Leads in the same stage under both.
    pub same_stage: u64,
    /// `same_stage / leads` (null without leads).
    pub agreement: Option<f64>,
    /// Converted leads (an outcome `converted` or `won`) where the two agree and where they do not.
    pub agree: Conversion,
    pub disagree: Conversion,
    /// Leads the shadow puts in a later stage of the pipeline than the active model, and in an
    /// earlier one.
    pub shadow_higher: Conversion,
    pub shadow_lower: Conversion,
    /// Every (active stage, shadow stage) pair with its leads and conversions.
    pub stages: Vec<StageCell>,
    /// Up to 20 leads where the stages differ, biggest total difference first.
    pub examples: Vec<Disagreement>,
}

/// Leads and how many of them converted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Conversion {
    pub leads: u64,
    pub converted: u64,
    /// `converted / leads` (null without leads).
    pub rate: Option<f64>,
}

impl Conversion {
    fn add(&mut self, converted: bool) {
        self.leads += 1;
        self.converted += u64::from(converted);
        self.rate = Some(self.converted as f64 / self.leads as f64);
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StageCell {
    pub active_stage: String,
    pub shadow_stage: String,
    #[serde(flatten)]
    pub conversion: Conversion,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Disagreement {
    pub lead_id: String,
    pub active_stage: String,
    pub active_total: f64,
    pub shadow_stage: String,
    pub shadow_total: f64,
    pub converted: bool,
}

/// Where `stage` comes in `model`'s pipeline: `lead` first, then its stages from the lowest
/// threshold up; `None` for a stage it does not have (an outcome's, or another model's).
fn position(model: &CheckedModel, stage: &str) -> Option<usize> {
    match model.stages.iter().position(|s| s.name == stage) {
        Some(i) => Some(i + 1),
        None => (stage == leadscore_core::model::DEFAULT_STAGE).then_some(0),
    }
}

impl App {
    /// The shadow models scored live now.
    pub fn shadows(&self) -> Arc<Vec<Arc<ActiveModel>>> {
        match self.shadows.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn set_shadows(&self, list: Vec<Arc<ActiveModel>>) {
        let list = Arc::new(list);
        match self.shadows.write() {
            Ok(mut guard) => *guard = list,
            Err(poisoned) => *poisoned.into_inner() = list,
        }
    }

    /// Runs model `version` in shadow: from now on it scores every message beside the active
    /// model, and a backfill scores the leads stored before. Starting it again starts afresh.
    pub fn start_shadow(self: &Arc<Self>, version: i64) -> Result<ShadowStatus, ServiceError> {
        let row = self.store.read(|tx| tx.model(version))?.ok_or_else(|| model_not_found(version))?;
        if row.active || self.model().version == version {
            return Err(ServiceError::user(
                Code::ModelIsActive,
                format!("model version {version} is the active model; it cannot also run in shadow"),
            ));
        }
        let (model, _) = check_source(&row.source).map_err(|d| invalid_model(&row.source, &d))?;
        let shadow = Arc::new(ActiveModel::new(version, row.source, model));
        // Scores it kept from an earlier run missed what came meanwhile: they go first.
        self.store.write(|tx| {
            tx.set_shadow(version, false)?;
            tx.set_shadow(version, true)
        })?;
        let mut list: Vec<Arc<ActiveModel>> = self.shadows().iter().filter(|s| s.version != version).cloned().collect();
        list.push(shadow);
        list.sort_by_key(|s| s.version);
        self.set_shadows(list);
        self.spawn_backfill(version);
        self.shadow_status(version)
    }

    /// Stops running model `version` in shadow and forgets its scores.
    pub fn stop_shadow(&self, version: i64) -> Result<ShadowStatus, ServiceError> {
        let found = self.store.write(|tx| tx.set_shadow(version, false))?;
        if !found {
            return Err(model_not_found(version));
        }
        self.drop_shadow(version);
        self.shadow_status(version)
    }

    /// Takes `version` off the live shadow list (stopped, or promoted by activation).
    pub(crate) fn drop_shadow(&self, version: i64) {
        let list: Vec<Arc<ActiveModel>> = self.shadows().iter().filter(|s| s.version != version).cloned().collect();
        self.set_shadows(list);
    }

    /// Whether `version` runs in shadow, and how many leads it has scored.
    pub fn shadow_status(&self, version: i64) -> Result<ShadowStatus, ServiceError> {
        let (row, scored, leads) = self.store.read(|tx| {
            Ok::<_, StoreError>((tx.model(version)?, tx.count_shadow_scores(version)?, tx.count_leads()?))
        })?;
        let row = row.ok_or_else(|| model_not_found(version))?;
        let shadow = row.shadow && !row.active;
        Ok(ShadowStatus {
            version,
            name: row.name,
            shadow,
            scored: if shadow { scored.max(0) as u64 } else { 0 },
            leads: leads.max(0) as u64,
        })
    }

    /// The stored shadow models that check (one that does not is left out, with an error logged).
    pub(crate) fn load_shadows(&self) -> Result<(), StoreError> {
        let rows = self.store.read(|tx| tx.shadow_models())?;
        let current = self.shadows();
        let mut list = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(known) = current.iter().find(|s| s.version == row.version) {
                list.push(Arc::clone(known));
                continue;
            }
            match check_source(&row.source) {
                Ok((model, _)) => list.push(Arc::new(ActiveModel::new(row.version, row.source, model))),
                Err(_) => tracing::error!("shadow model version {} does not check; it is not scored", row.version),
            }
        }
        let changed =
            list.len() != current.len() || list.iter().zip(current.iter()).any(|(a, b)| a.version != b.version);
        if changed {
            self.set_shadows(list);
        }
        Ok(())
    }

    /// Scores, in the background, every lead shadow model `version` has not scored yet.
    pub(crate) fn spawn_backfill(self: &Arc<Self>, version: i64) {
        let app = Arc::clone(self);
        self.spawn_thread(&format!("shadow-{version}"), move || {
            if let Err(e) = app.backfill(version) {
                tracing::error!("shadow model version {version}: backfill stopped: {e}");
            }
        });
    }

    /// Backfills every shadow model that has leads left to score (after a restart).
    pub(crate) fn spawn_backfills(self: &Arc<Self>) {
        for shadow in self.shadows().iter() {
            let left = self.store.read(|tx| tx.leads_without_shadow(shadow.version, "", 1));
            if left.is_ok_and(|ids| !ids.is_empty()) {
                self.spawn_backfill(shadow.version);
            }
        }
    }

    fn backfill(&self, version: i64) -> Result<(), StoreError> {
        let mut after = String::new();
        loop {
            let Some(shadow) = self.shadows().iter().find(|s| s.version == version).cloned() else { return Ok(()) };
            if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(());
            }
            let ids = self.store.read(|tx| tx.leads_without_shadow(version, &after, BACKFILL_CHUNK))?;
            let Some(last) = ids.last() else { return Ok(()) };
            after = last.clone();
            let replay = Fresh::replay(&ids);
            self.store.write(|tx| {
                // Under the leads' locks, so that a stop in between leaves no scores behind.
                tx.lock_leads(&ids)?;
                if !self.shadows().iter().any(|s| s.version == version) {
                    return Ok(());
                }
                // As of now, under the locks: a message ingested while this write waited for
                // them is newer than any instant read before.
                let now = self.clock.now();
                let due: Vec<(String, Millis)> = ids.iter().map(|id| (id.clone(), now)).collect();
                rescore_shadow(tx, &shadow, &due, &replay)
            })?;
            metrics::counter!("leadscore_rescored_leads_total", "cause" => "shadow").increment(ids.len() as u64);
        }
    }

    /// Applies every shadow model's time-driven changes due at or before `now`. Returns how many
    /// shadow scores were rescored.
    pub(crate) fn run_due_shadows(&self, now: Millis) -> Result<usize, StoreError> {
        let mut rescored = 0;
        loop {
            let due = self.store.read(|tx| tx.due_shadow_scores(now, 256))?;
            if due.is_empty() {
                return Ok(rescored);
            }
            let mut by_version: BTreeMap<i64, Vec<(String, Millis)>> = BTreeMap::new();
            for (version, lead, at) in due {
                by_version.entry(version).or_default().push((lead, at));
            }
            let shadows = self.shadows();
            for (version, due) in by_version {
                let Some(shadow) = shadows.iter().find(|s| s.version == version) else {
                    // Stopped or promoted meanwhile: nothing to schedule for it.
                    let ids: Vec<String> = due.into_iter().map(|(id, _)| id).collect();
                    self.store.write(|tx| tx.clear_shadow_changes(version, &ids))?;
                    continue;
                };
                rescored += rescore_batch_or_each(
                    &format!(" (shadow model version {version})"),
                    &due,
                    |due| self.store.write(|tx| rescore_due_shadow(tx, shadow, due)),
                    |id| self.store.write(|tx| tx.clear_shadow_changes(version, &[id.to_owned()])),
                )?;
            }
        }
    }

    /// Compares shadow model `version` with the active model over every stored lead.
    pub fn compare_shadow(&self, version: i64) -> Result<ShadowComparison, ServiceError> {
        let row = self.store.read(|tx| tx.model(version))?.ok_or_else(|| model_not_found(version))?;
        let (shadow_model, _) = check_source(&row.source).map_err(|d| invalid_model(&row.source, &d))?;
        let active = self.model();
        let pairs = self.store.read(|tx| tx.stage_pairs(version))?;
        let mut comparison = ShadowComparison {
            version,
            name: row.name,
            active_version: active.version,
            active_name: active.model.name.clone(),
            leads: 0,
            not_scored: 0,
            same_stage: 0,
            agreement: None,
            agree: Conversion::default(),
            disagree: Conversion::default(),
            shadow_higher: Conversion::default(),
            shadow_lower: Conversion::default(),
            stages: Vec::new(),
            examples: Vec::new(),
        };
        let mut cells: BTreeMap<(String, String), Conversion> = BTreeMap::new();
        let mut examples = Vec::new();
        for pair in pairs {
            let (Some((a_stage, a_total)), Some((s_stage, s_total))) = (pair.active, pair.shadow) else {
                comparison.not_scored += 1;
                continue;
            };
            comparison.leads += 1;
            cells.entry((a_stage.clone(), s_stage.clone())).or_default().add(pair.converted);
            if a_stage == s_stage {
                comparison.same_stage += 1;
                comparison.agree.add(pair.converted);
                continue;
            }
            comparison.disagree.add(pair.converted);
            let order = |model: &CheckedModel| Some((position(model, &a_stage)?, position(model, &s_stage)?));
            match order(&active.model).or_else(|| order(&shadow_model)) {
                Some((a, s)) if s > a => comparison.shadow_higher.add(pair.converted),
                Some((a, s)) if s < a => comparison.shadow_lower.add(pair.converted),
                _ => {}
            }
            examples.push(Disagreement {
                lead_id: pair.lead_id,
                active_stage: a_stage,
                active_total: a_total,
                shadow_stage: s_stage,
                shadow_total: s_total,
                converted: pair.converted,
            });
        }
        comparison.agreement = (comparison.leads > 0).then(|| comparison.same_stage as f64 / comparison.leads as f64);
        examples.sort_by(|a, b| {
            let gap = |d: &Disagreement| (d.shadow_total - d.active_total).abs();
            gap(b).total_cmp(&gap(a)).then_with(|| a.lead_id.cmp(&b.lead_id))
        });
        examples.truncate(20);
        comparison.examples = examples;
        comparison.stages = cells
            .into_iter()
            .map(|((active_stage, shadow_stage), conversion)| StageCell { active_stage, shadow_stage, conversion })
            .collect();
        Ok(comparison)
    }
}

/// Rescores these due shadow scores (those still due: another writer may have rescored some
/// since they were read), each at its instant, from its stored state.
fn rescore_due_shadow(tx: &mut Tx<'_>, shadow: &ActiveModel, due: &[(String, Millis)]) -> Result<usize, StoreError> {
    let ids: Vec<String> = due.iter().map(|(id, _)| id.clone()).collect();
    tx.lock_leads(&ids)?;
    let current: HashMap<String, Option<Millis>> = tx
        .shadow_scores_of(&ids)?
        .into_iter()
        .filter(|s| s.model_version == shadow.version)
        .map(|s| (s.lead_id, s.next_change_at))
        .collect();
    let still_due: Vec<(String, Millis)> =
        due.iter().filter(|(id, at)| current.get(id) == Some(&Some(*at))).cloned().collect();
    rescore_shadow(tx, shadow, &still_due, &Fresh::default())?;
    Ok(still_due.len())
}
