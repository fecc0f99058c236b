//! Progress of long admin commands (`import-seed`, `db backup`, `bench-data`) on stderr: a bar
//! on a terminal; anywhere else (a pipe, a log file, cron's mail) a plain line at the start,
//! every few seconds and at the end, so a script's log still says how far the work got.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Things, named by what happened to them: `"users hashed"`.
    Items(&'static str),
    /// Bytes, shown in MiB.
    Bytes,
}

/// Plain lines come at most this often, and less often while the work barely moves.
const EVERY: Duration = Duration::from_secs(2);
/// Without a whole percent of progress, a line still comes this often (the work is alive).
const QUIET_MAX: Duration = Duration::from_secs(60);

/// One task's progress; shared by the threads doing the work (it is `Sync`).
pub struct Progress {
    task: &'static str,
    total: u64,
    unit: Unit,
    output: Output,
}

enum Output {
    Bar(indicatif::ProgressBar),
    Lines(Mutex<Lines>),
}

struct Lines {
    sink: Box<dyn Write + Send>,
    started: Instant,
    done: u64,
    /// When the last line was printed, and the count it showed.
    printed_at: Instant,
    printed: u64,
}

impl Progress {
    /// Starts reporting `task` (e.g. `"import-seed"`) out of `total`: a bar when stderr is a
    /// terminal, plain lines otherwise.
    pub fn start(task: &'static str, total: u64, unit: Unit) -> Self {
        if std::io::stderr().is_terminal() {
            Self::bar(task, total, unit)
        } else {
            Self::lines(task, total, unit, Box::new(std::io::stderr()))
        }
    }

    fn bar(task: &'static str, total: u64, unit: Unit) -> Self {
        let counts = match unit {
            Unit::Items(what) => format!("{{pos}}/{{len}} {what}"),
            Unit::Bytes => "{bytes}/{total_bytes}".to_owned(),
        };
        let template = format!("{{prefix}}: [{{bar:30}}] {counts} ({{percent}}%, {{eta}} left)");
        let style = indicatif::ProgressStyle::with_template(&template)
            .expect("a valid template")
            .progress_chars("=> ");
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        )
        .with_style(style)
        .with_prefix(task);
        Self {
            task,
            total,
            unit,
            output: Output::Bar(bar),
        }
    }

    /// Plain lines to `sink`, starting with a `0/total` line.
    fn lines(task: &'static str, total: u64, unit: Unit, sink: Box<dyn Write + Send>) -> Self {
        let now = Instant::now();
        let progress = Self {
            task,
            total,
            unit,
            output: Output::Lines(Mutex::new(Lines {
                sink,
                started: now,
                done: 0,
                printed_at: now,
                printed: 0,
            })),
        };
        if let Output::Lines(lines) = &progress.output {
            progress.print(&mut lock(lines), now);
        }
        progress
    }

    /// `n` more done.
    pub fn inc(&self, n: u64) {
        match &self.output {
            Output::Bar(bar) => bar.inc(n),
            Output::Lines(lines) => {
                let mut l = lock(lines);
                let done = l.done + n;
                self.advance(&mut l, done);
            }
        }
    }

    /// `done` done so far.
    pub fn set(&self, done: u64) {
        match &self.output {
            Output::Bar(bar) => bar.set_position(done),
            Output::Lines(lines) => self.advance(&mut lock(lines), done),
        }
    }

    /// A message of the work's own (e.g. a skipped row), printed without tearing the bar.
    pub fn println(&self, message: &str) {
        match &self.output {
            Output::Bar(bar) => bar.suspend(|| eprintln!("{message}")),
            Output::Lines(lines) => {
                let _ = writeln!(lock(lines).sink, "{message}");
            }
        }
    }

    /// The work is over: a last line says the final count (in place of the bar).
    pub fn finish(&self) {
        match &self.output {
            Output::Bar(bar) => close(bar, |done, elapsed| self.line(done, elapsed)),
            Output::Lines(lines) => {
                let mut l = lock(lines);
                if l.printed != l.done {
                    self.print(&mut l, Instant::now());
                }
            }
        }
    }

    fn advance(&self, l: &mut Lines, done: u64) {
        l.done = done.min(self.total);
        let now = Instant::now();
        if self.due(l, now) {
            self.print(l, now);
        }
    }

    /// A new line is due: [`EVERY`] has passed and the work moved by a whole percent, or
    /// [`QUIET_MAX`] has passed.
    fn due(&self, l: &Lines, now: Instant) -> bool {
        let since = now.saturating_duration_since(l.printed_at);
        let moved = (l.done - l.printed.min(l.done)) * 100 >= self.total.max(1);
        l.done != l.printed && since >= EVERY && (moved || since >= QUIET_MAX)
    }

    fn print(&self, l: &mut Lines, now: Instant) {
        let line = self.line(l.done, now.saturating_duration_since(l.started));
        // Progress is a courtesy: a closed stderr must not fail the work.
        let _ = writeln!(l.sink, "{line}");
        let _ = l.sink.flush();
        l.printed_at = now;
        l.printed = l.done;
    }

    /// `import-seed: 1200/5000 users hashed (24%, 31 s)`.
    fn line(&self, done: u64, elapsed: Duration) -> String {
        let percent = (done * 100).checked_div(self.total).unwrap_or(100);
        let counts = match self.unit {
            Unit::Items(what) => format!("{done}/{} {what}", self.total),
            Unit::Bytes => format!("{}/{} MiB copied", mib(done), mib(self.total)),
        };
        format!(
            "{}: {counts} ({percent}%, {} s)",
            self.task,
            elapsed.as_secs()
        )
    }
}

impl Drop for Progress {
    /// Work that failed says where it stopped, above the error message.
    fn drop(&mut self) {
        if let Output::Bar(bar) = &self.output {
            close(bar, |done, elapsed| self.line(done, elapsed));
        }
    }
}

/// Replaces the bar with the plain line of where it ended, so the terminal keeps a record (a
/// finished bar would also leave the cursor at its end, where the next message would follow).
fn close(bar: &indicatif::ProgressBar, line: impl Fn(u64, Duration) -> String) {
    if !bar.is_finished() {
        bar.finish_and_clear();
        eprintln!("{}", line(bar.position(), bar.elapsed()));
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

fn lock(lines: &Mutex<Lines>) -> std::sync::MutexGuard<'_, Lines> {
    lines.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn plain(total: u64, unit: Unit) -> (Progress, Captured) {
        let out = Captured::default();
        let p = Progress::lines("task", total, unit, Box::new(out.clone()));
        (p, out)
    }

    #[test]
    fn plain_lines_say_the_start_and_the_final_count() {
        let (p, out) = plain(5000, Unit::Items("users hashed"));
        for _ in 0..5000 {
            p.inc(1);
        }
        p.finish();
        let text = out.text();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("task: 0/5000 users hashed (0%"),
            "{text}"
        );
        let last = lines.last().unwrap();
        assert!(
            last.starts_with("task: 5000/5000 users hashed (100%,"),
            "{text}"
        );
        // A fast run does not print a line per item.
        assert!(lines.len() <= 3, "{text}");
        // Finishing twice adds nothing.
        p.finish();
        assert_eq!(out.text(), text);
    }

    #[test]
    fn lines_come_every_few_seconds_while_the_work_moves() {
        let (p, _) = plain(1000, Unit::Items("rows"));
        let Output::Lines(lines) = &p.output else {
            unreachable!()
        };
        let mut l = lock(lines);
        let t0 = l.printed_at;
        l.done = 500;
        assert!(!p.due(&l, t0 + Duration::from_millis(1500)), "too soon");
        assert!(p.due(&l, t0 + EVERY), "moved 50% in 2 s");
        l.done = 5; // less than a percent
        assert!(!p.due(&l, t0 + Duration::from_secs(10)));
        assert!(p.due(&l, t0 + QUIET_MAX), "still alive after a minute");
        l.done = 0;
        assert!(!p.due(&l, t0 + QUIET_MAX * 2), "nothing new to say");
    }

    #[test]
    fn bytes_are_shown_in_mib_and_an_empty_task_is_complete() {
        let (p, out) = plain(48 * 1024 * 1024, Unit::Bytes);
        p.set(12 * 1024 * 1024);
        p.set(48 * 1024 * 1024);
        p.finish();
        assert!(
            out.text().contains("task: 48.0/48.0 MiB copied (100%"),
            "{}",
            out.text()
        );
        let (p, out) = plain(0, Unit::Items("users written"));
        p.finish();
        assert!(
            out.text().contains("task: 0/0 users written (100%"),
            "{}",
            out.text()
        );
    }
}
