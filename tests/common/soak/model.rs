//! The soak's model of the config repo: per service the file at the
//! branch head and the last good one (what must serve), the commits the
//! schedule pushes, and the seeded generator that picks them.

/// splitmix64: a seeded generator, so a schedule replays from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent` %.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A shuffled bag: each draw takes one of what is left, and an empty bag
/// is filled again, so every kind comes up within one bag's length.
#[derive(Debug)]
pub struct Bag<T>(Vec<T>);

impl<T> Default for Bag<T> {
    fn default() -> Bag<T> {
        Bag(vec![])
    }
}

impl<T: Copy> Bag<T> {
    /// The next item that `ok` allows (one it does not stays in the bag
    /// for a later draw); the bag is filled from `all` when it holds
    /// none that `ok` allows.
    pub fn draw(&mut self, rng: &mut Rng, all: impl Iterator<Item = T>, ok: impl Fn(&T) -> bool) -> T {
        if !self.0.iter().any(&ok) {
            self.0.extend(all);
            for i in (1..self.0.len()).rev() {
                let j = rng.below(i + 1);
                self.0.swap(i, j);
            }
        }
        let at = self.0.iter().rposition(&ok).expect("the bag holds an allowed item");
        self.0.remove(at)
    }
}

/// The fixture versions a bump moves between.
pub const VERSIONS: [&str; 3] = ["1.0", "2.0", "3.0"];

/// An image that cannot be pulled: nothing listens on port 9.
pub const BROKEN: &str = "127.0.0.1:9/teal-soak/missing:1";

/// One service file, as the model writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub active: &'static str,
    pub blue: Option<String>,
    pub green: Option<String>,
    pub replicas: u32,
    /// Canary with analysis (the loaded services) or blue-green.
    pub canary: bool,
    pub host: String,
}

impl File {
    pub fn image(&self, color: &str) -> Option<&String> {
        if color == "blue" {
            self.blue.as_ref()
        } else {
            self.green.as_ref()
        }
    }

    pub fn idle(&self) -> &'static str {
        if self.active == "blue" {
            "green"
        } else {
            "blue"
        }
    }

    /// `teal bump`: the idle color gets `image` and takes traffic.
    pub fn bumped(&self, image: &str) -> File {
        let mut f = self.clone();
        if f.active == "blue" {
            f.green = Some(image.to_string());
        } else {
            f.blue = Some(image.to_string());
        }
        f.active = self.idle();
        f
    }

    pub fn text(&self) -> String {
        let color =
            |c: &str, i: &Option<String>| i.as_ref().map(|i| format!("{c}: {{image: {i}}}\n")).unwrap_or_default();
        let strategy = if self.canary {
            "strategy: canary\ncanary:\n  steps:\n    - {weight: 50, hold: 2s}\nanalysis: {max_errors: 5%, min_requests: 10}\n"
        } else {
            ""
        };
        format!(
            "active: {}\n{}{}port: 8080\nreplicas: {}\nroute: {{host: {}}}\nhealth:\n  http: {{path: /healthz}}\n  interval: 100ms\n  successes: 2\n  deadline: 10s\nswitch: {{drain: 100ms}}\n{strategy}",
            self.active,
            color("blue", &self.blue),
            color("green", &self.green),
            self.replicas,
            self.host
        )
    }
}

/// What a commit of the schedule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// A blue-green version bump (the services without load).
    Bump,
    /// A version bump through a canary that passes analysis (loaded services).
    CanaryPass,
    /// `git revert` of the last bump.
    Revert,
    /// A canary whose new version fails analysis (loaded services).
    CanaryFail,
    /// An image tag that cannot be pulled.
    BrokenImage,
    /// A service file that does not parse.
    InvalidYaml,
    /// A version whose health checks never pass (loaded services): no
    /// request may reach it.
    Unhealthy,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::Bump,
        Action::CanaryPass,
        Action::Revert,
        Action::CanaryFail,
        Action::BrokenImage,
        Action::InvalidYaml,
        Action::Unhealthy,
    ];

    /// How many of it a bag of actions holds.
    pub fn in_bag(self) -> usize {
        match self {
            Action::Bump => 3,
            Action::CanaryPass | Action::Revert => 2,
            _ => 1,
        }
    }

    /// Bad commits: the host must keep serving the last good state and say
    /// why; the schedule then reverts them.
    pub fn bad(self) -> bool {
        matches!(
            self,
            Action::CanaryFail | Action::BrokenImage | Action::InvalidYaml | Action::Unhealthy
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::Bump => "bump",
            Action::CanaryPass => "canary that passes",
            Action::Revert => "revert",
            Action::CanaryFail => "canary that fails analysis",
            Action::BrokenImage => "broken image tag",
            Action::InvalidYaml => "invalid YAML",
            Action::Unhealthy => "unhealthy version",
        }
    }
}

/// The version of the image whose health checks never pass: an answer
/// from it is traffic on a color whose checks had not passed.
pub const UNHEALTHY: &str = "8.0";

/// The YAML a broken commit writes.
pub const INVALID_YAML: &str = "active: blue\nblue:\n  imgae: x\n";

/// The version and color a file serves: the body of `GET /`.
/// The fixture images' tags are their versions (`...:2.0`).
pub fn serves(f: &File) -> String {
    let image = f.image(f.active).expect("the active color has an image");
    let version = image.rsplit(':').next().unwrap_or(image);
    format!("{version} {}\n", f.active)
}
