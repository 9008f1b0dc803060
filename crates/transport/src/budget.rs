//! A memory budget that every client connection shares for the packets it is receiving.
//!
//! A statement is read whole before it is classified, so a client sending a packet of
//! `max_allowed_packet` bytes makes rwproxy hold that much; a thousand clients doing it at once
//! would hold a thousand times as much. Each connection may buffer a small allowance
//! ([`FREE_PER_CONNECTION`]) without asking, which covers nearly every statement and costs
//! nothing on the hot path; beyond it, it takes units of [`UNIT`] bytes from the shared budget
//! before reading more. When the budget is spent, the connection stops reading (the client is
//! held back by TCP) until another packet is done, for at most the configured wait; then the
//! read fails with [`crate::TransportError::BudgetExhausted`].
//!
//! A packet's units are returned when the connection starts reading its next packet, i.e. once
//! the session is done with the previous one.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::TransportError;

/// Bytes a connection may buffer for one packet without taking from the budget.
pub const FREE_PER_CONNECTION: usize = 256 * 1024;
/// The budget's granularity.
pub const UNIT: usize = 256 * 1024;

/// The budget itself: shared by every client connection of the process.
#[derive(Debug)]
pub struct PacketBudget {
    units: Arc<Semaphore>,
    total_units: usize,
    wait: Duration,
}

impl PacketBudget {
    /// A budget of `bytes` (rounded down to whole units, at least one), where a reader waits
    /// at most `wait` for units another connection holds.
    pub fn new(bytes: u64, wait: Duration) -> Arc<Self> {
        let total_units = usize::try_from(bytes / UNIT as u64)
            .unwrap_or(usize::MAX)
            .clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(Self {
            units: Arc::new(Semaphore::new(total_units)),
            total_units,
            wait,
        })
    }

    /// The budget in bytes.
    pub fn total_bytes(&self) -> usize {
        self.total_units.saturating_mul(UNIT)
    }

    /// Bytes held by connections right now.
    pub fn in_use_bytes(&self) -> usize {
        self.total_units
            .saturating_sub(self.units.available_permits())
            .saturating_mul(UNIT)
    }
}

/// What one connection holds of the budget.
#[derive(Debug)]
pub(crate) struct Held {
    budget: Arc<PacketBudget>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Held {
    pub(crate) fn new(budget: Arc<PacketBudget>) -> Self {
        Self {
            budget,
            permit: None,
        }
    }

    fn units(&self) -> usize {
        self.permit.as_ref().map_or(0, |p| p.num_permits())
    }

    /// Makes sure the connection may buffer `bytes` for the packet it is reading: free up to
    /// the allowance, units from the budget beyond it (waiting for them at most the budget's
    /// wait). Without a wait when enough is held already.
    pub(crate) async fn cover(&mut self, bytes: usize) -> Result<(), TransportError> {
        let beyond = bytes.saturating_sub(FREE_PER_CONNECTION);
        let needed = beyond.div_ceil(UNIT);
        let held = self.units();
        if needed <= held {
            return Ok(());
        }
        let exhausted = || TransportError::BudgetExhausted {
            buffered: bytes,
            budget: self.budget.total_bytes(),
        };
        let more = needed - held;
        if needed > self.budget.total_units {
            return Err(exhausted());
        }
        let Ok(more32) = u32::try_from(more) else {
            return Err(exhausted());
        };
        let permit = match self.budget.units.clone().try_acquire_many_owned(more32) {
            Ok(p) => p,
            Err(_) => match tokio::time::timeout(
                self.budget.wait,
                self.budget.units.clone().acquire_many_owned(more32),
            )
            .await
            {
                Ok(Ok(p)) => p,
                // Timed out, or the semaphore was closed (never done): the budget is spent.
                _ => return Err(exhausted()),
            },
        };
        match &mut self.permit {
            Some(p) => p.merge(permit),
            None => self.permit = Some(permit),
        }
        Ok(())
    }

    /// Gives back everything held (the packet it was held for is done with).
    #[inline]
    pub(crate) fn release(&mut self) {
        if self.permit.is_some() {
            self.permit = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn small_packets_take_nothing_and_large_ones_take_units_until_released() {
        let budget = PacketBudget::new(4 * UNIT as u64, Duration::from_millis(50));
        let mut a = Held::new(budget.clone());
        a.cover(FREE_PER_CONNECTION).await.unwrap();
        assert_eq!(budget.in_use_bytes(), 0);
        a.cover(FREE_PER_CONNECTION + 1).await.unwrap();
        assert_eq!(budget.in_use_bytes(), UNIT);
        a.cover(FREE_PER_CONNECTION + 3 * UNIT).await.unwrap();
        assert_eq!(budget.in_use_bytes(), 3 * UNIT);

        // Another connection gets the one unit left, then waits, then fails.
        let mut b = Held::new(budget.clone());
        b.cover(FREE_PER_CONNECTION + UNIT).await.unwrap();
        let err = b.cover(FREE_PER_CONNECTION + 2 * UNIT).await.unwrap_err();
        assert!(
            matches!(err, TransportError::BudgetExhausted { .. }),
            "{err}"
        );
        assert_eq!(budget.in_use_bytes(), 4 * UNIT);

        a.release();
        assert_eq!(budget.in_use_bytes(), UNIT);
        b.cover(FREE_PER_CONNECTION + 2 * UNIT).await.unwrap();
        b.release();
        assert_eq!(budget.in_use_bytes(), 0);
    }

    #[tokio::test]
    async fn a_waiting_reader_continues_when_units_come_back() {
        let budget = PacketBudget::new(2 * UNIT as u64, Duration::from_secs(5));
        let mut a = Held::new(budget.clone());
        a.cover(FREE_PER_CONNECTION + 2 * UNIT).await.unwrap();
        let mut b = Held::new(budget.clone());
        let waiter =
            tokio::spawn(async move { b.cover(FREE_PER_CONNECTION + UNIT).await.map(|()| b) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        a.release();
        let b = waiter.await.unwrap().unwrap();
        assert_eq!(b.units(), 1);
    }

    #[tokio::test]
    async fn a_packet_larger_than_the_whole_budget_fails_at_once() {
        let budget = PacketBudget::new(2 * UNIT as u64, Duration::from_secs(60));
        let mut a = Held::new(budget);
        // Waiting for units that can never come would take the whole minute.
        let result = tokio::time::timeout(
            Duration::from_secs(30),
            a.cover(FREE_PER_CONNECTION + 3 * UNIT),
        )
        .await;
        assert!(
            matches!(result, Ok(Err(TransportError::BudgetExhausted { .. }))),
            "{result:?}"
        );
    }
}
