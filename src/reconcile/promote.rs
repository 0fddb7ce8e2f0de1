//! Which rollout a `promote:` or `abort:` commit covers. The word in the
//! service file names a commit of the repo (`teal promote` writes the
//! branch head it saw); it covers a waiting rollout when the rollout's
//! commit is that commit or one of its ancestors: the rollout was under
//! way when the word was written. A later rollout (a new version after
//! the promotion) is not covered, so a `promote:` left in the file never
//! promotes the next version by itself.

use crate::records::Records;
use crate::spec::Desired;

/// Sets each service's `promoted` and `aborted` from its unfinished
/// rollout record and the repo's history.
pub fn resolve(desired: &mut Desired, repo: &git2::Repository, records: &Records) {
    for svc in desired.services.values_mut() {
        let p = &mut svc.promotion;
        if p.promote.is_none() && p.abort.is_none() {
            continue;
        }
        let Some(rollout) = records.load(&svc.name).filter(|r| !r.finished()) else {
            continue;
        };
        let covered = |word: &Option<String>| {
            word.as_deref()
                .filter(|w| covers(repo, w, &rollout.commit))
                .map(|_| rollout.commit.clone())
        };
        p.promoted = covered(&p.promote);
        p.aborted = covered(&p.abort);
    }
}

/// Whether `commit` is `word`'s commit or one of its ancestors.
fn covers(repo: &git2::Repository, word: &str, commit: &str) -> bool {
    let Ok(at) = repo.revparse_single(word).and_then(|o| o.peel_to_commit()) else {
        return false;
    };
    let Ok(c) = git2::Oid::from_str(commit) else {
        return false;
    };
    at.id() == c || repo.graph_descendant_of(at.id(), c).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(repo: &git2::Repository, msg: &str) -> git2::Oid {
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let tree = repo
            .find_tree(repo.treebuilder(None).unwrap().write().unwrap())
            .unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, msg, &tree, &parents).unwrap()
    }

    #[test]
    fn a_word_covers_its_commit_and_its_ancestors_only() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let a = commit(&repo, "a");
        let b = commit(&repo, "b");
        let c = commit(&repo, "c");
        let short = |o: git2::Oid| o.to_string()[..7].to_string();
        assert!(covers(&repo, &short(b), &a.to_string()));
        assert!(covers(&repo, &short(b), &b.to_string()));
        assert!(!covers(&repo, &short(b), &c.to_string()), "a later rollout");
        assert!(!covers(&repo, "0000000", &a.to_string()), "an unknown commit");
        assert!(!covers(&repo, &short(b), "not-a-commit"));
    }
}
