//! The next move of a rolling update in Swarm mode, from the replicas its
//! two services are set to: the color's own (old) one and the twin (new)
//! one. Pure: the engine reads the counts from Swarm and carries out the
//! answer, so a restarted teal picks up from the services as they are.

/// What a Swarm rolling update does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwarmMove {
    /// The twin runs every replica and the old service none: the twin
    /// becomes the color's service.
    Promote,
    /// The twin is set to `twin` tasks (checked, routed, judged), then
    /// the old service to `old`.
    Batch { twin: u32, old: u32 },
}

/// The next move for `replicas` replicas, `max_surge` at a time, when the
/// old service is set to `old` tasks and the twin to `new`. Between
/// batches `old + new == replicas`; more means teal stopped after a batch
/// came up and before the old tasks went, and that batch is checked and
/// judged again before the old service shrinks.
pub fn swarm_move(replicas: u32, max_surge: u32, old: u32, new: u32) -> SwarmMove {
    if old == 0 && new >= replicas {
        return SwarmMove::Promote;
    }
    let twin = if old + new > replicas {
        new
    } else {
        (new + max_surge.max(1)).min(replicas)
    };
    SwarmMove::Batch {
        twin,
        old: old.min(replicas.saturating_sub(twin)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SwarmMove::*;

    /// Every move of an update from `old` tasks, as (twin, old) pairs.
    fn walk(replicas: u32, surge: u32, mut old: u32) -> Vec<(u32, u32)> {
        let (mut new, mut seen) = (0, vec![]);
        while let Batch { twin, old: o } = swarm_move(replicas, surge, old, new) {
            assert!(
                twin + old <= replicas.max(old) + surge.max(1),
                "{twin} + {old} tasks at once"
            );
            seen.push((twin, o));
            (new, old) = (twin, o);
        }
        seen
    }

    #[test]
    fn batches_of_max_surge_never_more_than_replicas_plus_surge() {
        assert_eq!(walk(3, 1, 3), [(1, 2), (2, 1), (3, 0)]);
        assert_eq!(walk(5, 2, 5), [(2, 3), (4, 1), (5, 0)]);
        // max_surge 0 reads as 1; a surge past the replicas is capped.
        assert_eq!(walk(2, 0, 2), [(1, 1), (2, 0)]);
        assert_eq!(walk(2, 9, 2), [(2, 0)]);
        // More replicas than before, and fewer.
        assert_eq!(walk(4, 1, 2), [(1, 2), (2, 2), (3, 1), (4, 0)]);
        assert_eq!(walk(2, 1, 4), [(0, 2), (1, 1), (2, 0)]);
    }

    #[test]
    fn a_batch_cut_off_before_the_old_tasks_went_is_taken_again() {
        // Twin up to 2, old still at 2 of 3: judge the twin's 2, then
        // the old service goes to 1.
        assert_eq!(swarm_move(3, 1, 2, 2), Batch { twin: 2, old: 1 });
        assert_eq!(swarm_move(3, 1, 0, 3), Promote);
        assert_eq!(swarm_move(3, 1, 0, 4), Promote);
    }
}
