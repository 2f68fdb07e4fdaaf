//! Services made of other services: weighted, highest random weight, mirroring, failover.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::HeaderValue;
use tokio::sync::Semaphore;

use crate::schedule::WeightedSchedule;
use crate::service::{PickContext, ServiceNode};
use crate::sticky::Sticky;
use crate::strategy::{self, Members};

/// Copies a mirroring service may have in flight at once; beyond, copies are dropped
/// rather than queued, so a slow mirror can never hold memory or the main request.
pub const MAX_MIRROR_COPIES: usize = 256;

/// One child of a weighted or HRW service.
#[derive(Debug)]
pub struct Child {
    pub name: String,
    pub node: Arc<ServiceNode>,
    pub weight: u64,
}

#[derive(Debug)]
pub struct Weighted {
    pub name: String,
    pub children: Vec<Child>,
    schedule: Option<WeightedSchedule>,
    sticky: Option<Sticky>,
    /// `healthCheck: {}`: children that are down are skipped.
    pub health_check: bool,
}

#[derive(Debug)]
pub struct HighestRandomWeight {
    pub name: String,
    pub children: Vec<Child>,
    pub health_check: bool,
}

#[derive(Debug)]
pub struct Mirroring {
    pub name: String,
    pub main: Arc<ServiceNode>,
    pub mirrors: Vec<Mirror>,
    /// Copies carry the request body (buffered) when true.
    pub mirror_body: bool,
    /// Bodies larger than this are not mirrored (the main service still gets them).
    pub max_body_size: Option<u64>,
    pub health_check: bool,
    /// Requests seen, for the percentages.
    total: AtomicU64,
    /// Bounds the copies in flight.
    pub copies: Arc<Semaphore>,
}

#[derive(Debug)]
pub struct Mirror {
    pub name: String,
    pub node: Arc<ServiceNode>,
    pub percent: u64,
    sent: AtomicU64,
}

#[derive(Debug)]
pub struct Failover {
    pub name: String,
    pub main: Arc<ServiceNode>,
    pub fallback: Arc<ServiceNode>,
    pub health_check: bool,
    /// `errors`: answers of the main service that send the request to the fallback.
    pub on_status: Option<FailoverOnStatus>,
}

/// `failover.errors`: the statuses that fail over, and the largest request body kept to
/// replay the request (`None`: no limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverOnStatus {
    pub ranges: Vec<(u16, u16)>,
    pub max_body: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "failover.errors.status: {0:?} is not a status or a range of statuses (\"500\", \"500-504\")"
)]
pub struct StatusRangeError(pub String);

impl FailoverOnStatus {
    /// Parses Traefik's `["500", "502-504"]`.
    pub fn parse(statuses: &[String], max_body: Option<i64>) -> Result<Self, StatusRangeError> {
        let mut ranges = Vec::with_capacity(statuses.len());
        for text in statuses {
            let bad = || StatusRangeError(text.clone());
            let (low, high) = match text.split_once('-') {
                Some((low, high)) => (low.trim(), high.trim()),
                None => (text.trim(), text.trim()),
            };
            let low: u16 = low.parse().map_err(|_| bad())?;
            let high: u16 = high.parse().map_err(|_| bad())?;
            if low > high {
                return Err(bad());
            }
            ranges.push((low, high));
        }
        Ok(FailoverOnStatus {
            ranges,
            max_body: max_body.and_then(|m| u64::try_from(m).ok()),
        })
    }

    pub fn matches(&self, status: http::StatusCode) -> bool {
        let status = status.as_u16();
        self.ranges
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&status))
    }
}

impl Weighted {
    /// Children of weight 0 are never picked. `sticky` is built over the children's names.
    pub fn new(
        name: String,
        children: Vec<Child>,
        sticky: Option<Sticky>,
        health_check: bool,
    ) -> Self {
        let weights: Vec<u64> = children.iter().map(|c| c.weight).collect();
        let schedule = WeightedSchedule::new(&weights);
        Weighted {
            name,
            children,
            schedule,
            sticky,
            health_check,
        }
    }

    pub(crate) fn pick(
        &self,
        ctx: &PickContext<'_>,
        set_cookies: &mut Vec<HeaderValue>,
    ) -> Option<&Arc<ServiceNode>> {
        let members = ChildMembers {
            children: &self.children,
            health_check: self.health_check,
        };
        let sticky = self.sticky.as_ref();
        if let Some(choice) = sticky.and_then(|s| s.choice(ctx.headers)) {
            if choice.member < self.children.len() && members.available(choice.member) {
                if choice.rewrite {
                    set_cookies.extend(sticky.and_then(|s| s.set_cookie(choice.member)).cloned());
                }
                return Some(&self.children[choice.member].node);
            }
        }
        let picked = strategy::wrr(self.schedule.as_ref(), &members)?;
        if let Some(sticky) = sticky {
            set_cookies.extend(sticky.set_cookie(picked).cloned());
        }
        Some(&self.children[picked].node)
    }

    pub(crate) fn is_available(&self) -> bool {
        !self.health_check
            || self
                .children
                .iter()
                .any(|c| c.weight > 0 && c.node.is_available())
    }

    pub(crate) fn resume_from(&self, previous: &Weighted) {
        if let (Some(s), Some(p)) = (&self.schedule, &previous.schedule) {
            s.resume_from(p);
        }
    }
}

impl HighestRandomWeight {
    pub(crate) fn pick(&self, ctx: &PickContext<'_>) -> Option<&Arc<ServiceNode>> {
        let members = ChildMembers {
            children: &self.children,
            health_check: self.health_check,
        };
        strategy::hrw(ctx.client_ip, &members).map(|i| &self.children[i].node)
    }

    pub(crate) fn is_available(&self) -> bool {
        !self.health_check
            || self
                .children
                .iter()
                .any(|c| c.weight > 0 && c.node.is_available())
    }
}

impl Mirroring {
    pub fn new(
        name: String,
        main: Arc<ServiceNode>,
        mirrors: Vec<(String, Arc<ServiceNode>, u64)>,
        mirror_body: bool,
        max_body_size: Option<u64>,
        health_check: bool,
    ) -> Self {
        Mirroring {
            name,
            main,
            mirrors: mirrors
                .into_iter()
                .map(|(name, node, percent)| Mirror {
                    name,
                    node,
                    percent,
                    sent: AtomicU64::new(0),
                })
                .collect(),
            mirror_body,
            max_body_size,
            health_check,
            total: AtomicU64::new(0),
            copies: Arc::new(Semaphore::new(MAX_MIRROR_COPIES)),
        }
    }

    /// The mirrors that get a copy of this request: each one's share of requests so far
    /// stays at its percentage (Traefik's counting, so 10% is every tenth request).
    pub fn mirrors_for_next_request(&self) -> Vec<&Mirror> {
        let total = self.total.fetch_add(1, Ordering::Relaxed) + 1;
        self.mirrors
            .iter()
            .filter(|m| {
                let sent = m.sent.load(Ordering::Relaxed);
                if sent.saturating_mul(100) < total.saturating_mul(m.percent) {
                    m.sent.fetch_add(1, Ordering::Relaxed);
                    true
                } else {
                    false
                }
            })
            .collect()
    }
}

impl Failover {
    /// Whether the request must go through the caller (to be replayed on the fallback after
    /// a failing answer) rather than straight to [`Failover::pick`]'s choice.
    pub(crate) fn replays(&self) -> bool {
        self.on_status.is_some() && self.main.is_available()
    }

    /// The main service while it is up, the fallback otherwise.
    pub(crate) fn pick(&self) -> &ServiceNode {
        if self.main.is_available() {
            &self.main
        } else {
            &self.fallback
        }
    }

    pub(crate) fn is_available(&self) -> bool {
        self.main.is_available() || self.fallback.is_available()
    }
}

struct ChildMembers<'a> {
    children: &'a [Child],
    health_check: bool,
}

impl Members for ChildMembers<'_> {
    fn count(&self) -> usize {
        self.children.len()
    }
    fn weight(&self, i: usize) -> u64 {
        self.children[i].weight
    }
    fn available(&self, i: usize) -> bool {
        // Without `healthCheck`, a parent does not learn that a child is down (Traefik).
        !self.health_check || self.children[i].node.is_available()
    }
    fn load(&self, _: usize) -> usize {
        0
    }
    fn key(&self, i: usize) -> &str {
        &self.children[i].name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::InternalService;

    #[test]
    fn failover_status_ranges() {
        let on = FailoverOnStatus::parse(&["500".into(), "502-504".into()], Some(-1)).unwrap();
        assert!(on.matches(http::StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!on.matches(http::StatusCode::NOT_IMPLEMENTED));
        assert!(on.matches(http::StatusCode::GATEWAY_TIMEOUT));
        assert_eq!(on.max_body, None);
        assert!(FailoverOnStatus::parse(&["5xx".into()], None).is_err());
        assert!(FailoverOnStatus::parse(&["504-500".into()], None).is_err());
    }

    #[test]
    fn mirror_percentages_are_exact_over_time() {
        let main = Arc::new(ServiceNode::Internal(InternalService::Noop));
        let m = Mirroring::new(
            "m".into(),
            main.clone(),
            vec![
                ("a".into(), main.clone(), 10),
                ("b".into(), main.clone(), 100),
                ("c".into(), main, 0),
            ],
            true,
            None,
            false,
        );
        let mut counts = [0; 3];
        for _ in 0..100 {
            for mirror in m.mirrors_for_next_request() {
                counts[["a", "b", "c"]
                    .iter()
                    .position(|n| *n == mirror.name)
                    .unwrap()] += 1;
            }
        }
        assert_eq!(counts, [10, 100, 0]);
    }
}
