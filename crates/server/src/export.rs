//! "Export as one file": one ffmpeg job at a time, composing a recording's streams into a grid
//! video (see `hearth_record::export`), with its progress readable while it runs. The result is
//! kept in the recording's directory, so a finished export survives a restart.

use crate::error::ApiError;
use axum::http::StatusCode;
use hearth_proto::{ErrorCode, RecordingId};
use hearth_record::Manifest;
use hearth_record::export::{ExportFormat, ffmpeg_args, progress};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::OnceCell;

/// Most of ffmpeg's error output kept to explain a failure.
const STDERR_KEEP: usize = 4096;

/// Where an export stands, as the API reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportStatus {
    /// `none`, `running`, `done`, `failed` or `unavailable`.
    pub state: &'static str,
    /// Fraction done, 0 to 1.
    pub progress: f64,
    /// Why it failed or cannot run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// MIME type of the finished file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<&'static str>,
}

#[derive(Debug, Clone)]
enum Job {
    Running(f64),
    Failed(String),
}

/// Export jobs, server-wide.
#[derive(Debug)]
pub struct Exports {
    ffmpeg: PathBuf,
    /// What this ffmpeg can encode, found out once (`None`: no ffmpeg, or no usable encoder).
    format: OnceCell<Option<ExportFormat>>,
    jobs: Arc<Mutex<HashMap<RecordingId, Job>>>,
    /// The running job's task, so deleting its recording can stop it.
    running: Mutex<Option<(RecordingId, tokio::task::AbortHandle)>>,
}

/// The finished export's file name in a recording's directory.
pub fn file_name(format: ExportFormat) -> String {
    format!("export.{}", format.extension())
}

impl Exports {
    /// Exports with the ffmpeg at `ffmpeg` (a path, or a name looked up on `PATH`).
    pub fn new(ffmpeg: PathBuf) -> Self {
        Self {
            ffmpeg,
            format: OnceCell::new(),
            jobs: Arc::default(),
            running: Mutex::new(None),
        }
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<RecordingId, Job>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What this server's ffmpeg can export to, if anything.
    pub async fn format(&self) -> Option<ExportFormat> {
        *self
            .format
            .get_or_init(|| async {
                let output = tokio::process::Command::new(&self.ffmpeg)
                    .args(["-hide_banner", "-encoders"])
                    .kill_on_drop(true)
                    .output()
                    .await;
                match output {
                    Ok(out) if out.status.success() => {
                        ExportFormat::pick(&String::from_utf8_lossy(&out.stdout))
                    }
                    Ok(_) | Err(_) => {
                        tracing::info!(ffmpeg = %self.ffmpeg.display(), "ffmpeg not usable; export is unavailable");
                        None
                    }
                }
            })
            .await
    }

    /// The finished export of the recording in `dir`, if there is one: its path and type.
    pub async fn finished(&self, dir: &Path) -> Option<(PathBuf, &'static str)> {
        let format = self.format().await?;
        let path = dir.join(file_name(format));
        path.is_file().then_some((path, format.content_type()))
    }

    /// Where recording `id`'s export stands.
    pub async fn status(&self, id: &RecordingId, dir: &Path) -> ExportStatus {
        let Some(format) = self.format().await else {
            return unavailable_status();
        };
        if let Some(job) = self.jobs().get(id).cloned() {
            return match job {
                Job::Running(progress) => ExportStatus {
                    state: "running",
                    progress,
                    error: None,
                    content_type: None,
                },
                Job::Failed(error) => ExportStatus {
                    state: "failed",
                    progress: 0.0,
                    error: Some(error),
                    content_type: None,
                },
            };
        }
        if dir.join(file_name(format)).is_file() {
            ExportStatus {
                state: "done",
                progress: 1.0,
                error: None,
                content_type: Some(format.content_type()),
            }
        } else {
            ExportStatus {
                state: "none",
                progress: 0.0,
                error: None,
                content_type: None,
            }
        }
    }

    /// Starts exporting recording `id` (in `dir`, described by `manifest`). One export runs at a
    /// time: the machine has few cores and live media comes first.
    pub async fn start(
        &self,
        id: &RecordingId,
        dir: PathBuf,
        manifest: Manifest,
    ) -> Result<ExportStatus, ApiError> {
        let Some(format) = self.format().await else {
            return Err(unavailable());
        };
        let output = dir.join(format!(".partial.{}", file_name(format)));
        let Some(args) = ffmpeg_args(&manifest, &dir, &output, format) else {
            return Err(ApiError::invalid("this recording has no media to export"));
        };
        {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((other, task)) = running.as_ref()
                && !task.is_finished()
            {
                return Err(ApiError {
                    status: StatusCode::CONFLICT,
                    code: ErrorCode::ExportBusy,
                    message: if other == id {
                        "this recording is being exported already".into()
                    } else {
                        "another recording is being exported; try again when it is done".into()
                    },
                });
            }
            self.jobs().insert(id.clone(), Job::Running(0.0));
            let _ = std::fs::remove_file(dir.join(file_name(format)));
            let task = tokio::spawn(run(
                self.ffmpeg.clone(),
                args,
                Arc::clone(&self.jobs),
                id.clone(),
                manifest.duration_ms,
                output,
                dir.join(file_name(format)),
            ));
            *running = Some((id.clone(), task.abort_handle()));
        }
        tracing::info!(recording_id = %id, format = format.extension(), "export started");
        Ok(self.status(id, &dir).await)
    }

    /// Stops recording `id`'s export, if it is running (its recording is being deleted).
    pub fn cancel(&self, id: &RecordingId) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((current, task)) = running.as_ref()
            && current == id
        {
            // Aborting drops the child process handle, which kills ffmpeg (kill_on_drop).
            task.abort();
            *running = None;
        }
        self.jobs().remove(id);
    }
}

fn unavailable_status() -> ExportStatus {
    ExportStatus {
        state: "unavailable",
        progress: 0.0,
        error: Some(UNAVAILABLE.into()),
        content_type: None,
    }
}

const UNAVAILABLE: &str = "export needs ffmpeg (with libx264, or libvpx and libopus), which is not installed on this server; each stream can still be downloaded";

fn unavailable() -> ApiError {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: ErrorCode::ExportUnavailable,
        message: UNAVAILABLE.into(),
    }
}

async fn run(
    ffmpeg: PathBuf,
    args: Vec<String>,
    jobs: Arc<Mutex<HashMap<RecordingId, Job>>>,
    id: RecordingId,
    duration_ms: u64,
    partial: PathBuf,
    finished: PathBuf,
) {
    let set = |job: Job| {
        jobs.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), job);
    };
    let child = tokio::process::Command::new(&ffmpeg)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            set(Job::Failed(format!("cannot run ffmpeg: {e}")));
            return;
        }
    };
    let stderr = child.stderr.take().map(|mut err| {
        tokio::spawn(async move {
            let mut text = Vec::new();
            let mut chunk = [0u8; 1024];
            while let Ok(n) = err.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                if text.len() < STDERR_KEEP {
                    text.extend_from_slice(&chunk[..n]);
                }
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    });
    if let Some(stdout) = child.stdout.take() {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(done) = progress(&line, duration_ms) {
                set(Job::Running(done));
            }
        }
    }
    let status = child.wait().await;
    let errors = match stderr {
        Some(task) => task.await.unwrap_or_default(),
        None => String::new(),
    };
    match status {
        Ok(s) if s.success() => match tokio::fs::rename(&partial, &finished).await {
            Ok(()) => {
                tracing::info!(recording_id = %id, "export finished");
                jobs.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            }
            Err(e) => set(Job::Failed(format!("cannot keep the exported file: {e}"))),
        },
        Ok(s) => {
            let last = errors
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            tracing::warn!(recording_id = %id, status = %s, error = %last, "export failed");
            let _ = tokio::fs::remove_file(&partial).await;
            set(Job::Failed(format!("ffmpeg failed ({s}): {last}")));
        }
        Err(e) => set(Job::Failed(format!("ffmpeg did not finish: {e}"))),
    }
}
