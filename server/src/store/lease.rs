//! Leases: which instance of Stepline does a job only one may do at a time (follow one
//! engine source, drive the built-in engine's runs). Taken and renewed under the write
//! lock, and checked by the holder's own writes in their transaction
//! ([`Writer::holds_lease`]): a takeover falls between two of the old holder's batches,
//! never inside one, and a holder that lost its lease (stalled, cut off from the
//! database) can no longer write as its holder.

use super::rows::Millis;
use super::{Store, StoreError, Writer};
use crate::source::lease::{Held, LeaseError};

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub expires_ms: Millis,
    pub taken_ms: Millis,
}

impl Store {
    /// Takes lease `name` for `holder` until `expires`, or renews it (`renewing`) if
    /// `holder` holds it still: when `holder` holds it now, since when it does (not while
    /// another holder's runs, up to its `expires_ms`). Only a renewal of a lease that has
    /// not run out keeps its `taken_ms`: anything else begins a new term, even for the same
    /// holder (one that lost track of its lease must not go on with the old term's work).
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        renewing: bool,
        now: Millis,
        expires: Millis,
    ) -> Result<Option<Millis>, StoreError> {
        let mut writer = self.begin().await?;
        on_backend!(&mut writer.tx, tx => {
            sqlx::query(
                "INSERT INTO leases (name, holder, expires_ms, taken_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET
                     holder = excluded.holder,
                     expires_ms = excluded.expires_ms,
                     taken_ms = CASE WHEN leases.holder = excluded.holder
                                          AND leases.expires_ms > $4 AND $5
                                     THEN leases.taken_ms ELSE excluded.taken_ms END
                 WHERE leases.holder = excluded.holder OR leases.expires_ms <= $4",
            )
            .bind(name)
            .bind(holder)
            .bind(expires)
            .bind(now)
            .bind(renewing)
            .execute(&mut **tx)
            .await?
            .rows_affected()
        });
        let taken: Option<Millis> = on_backend!(&mut writer.tx, tx => {
            sqlx::query_scalar("SELECT taken_ms FROM leases WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .fetch_optional(&mut **tx)
                .await?
        });
        writer.commit().await?;
        Ok(taken)
    }

    /// Gives lease `name` up if `holder` holds it (on a clean stop: another instance
    /// takes it at once rather than after it expires).
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        write_alone!(
            self,
            "DELETE FROM leases WHERE name = $1 AND holder = $2",
            name,
            holder
        );
        Ok(())
    }

    /// Gives every lease of `holder` up (an instance that stops).
    pub async fn release_leases(&self, holder: &str) -> Result<(), StoreError> {
        write_alone!(self, "DELETE FROM leases WHERE holder = $1", holder);
        Ok(())
    }

    /// Every lease, by name.
    pub async fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        Ok(on_backend!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT name, holder, expires_ms, taken_ms FROM leases ORDER BY name",
            )
            .fetch_all(pool)
            .await?
        }))
    }
}

impl Writer {
    /// Whether `held` is still held at `now` (the same term: not lost and taken again
    /// since), as this transaction sees it (under the write lock: no takeover can happen
    /// before it ends).
    pub async fn holds_lease(&mut self, held: &Held, now: Millis) -> Result<bool, StoreError> {
        let found: Option<i64> = on_backend!(&mut self.tx, tx => {
            sqlx::query_scalar(
                "SELECT taken_ms FROM leases
                 WHERE name = $1 AND holder = $2 AND taken_ms = $3 AND expires_ms > $4",
            )
            .bind(&held.lease)
            .bind(&held.holder)
            .bind(held.taken_ms)
            .bind(now)
            .fetch_optional(&mut **tx)
            .await?
        });
        Ok(found.is_some())
    }
}

#[async_trait::async_trait]
impl crate::source::Leases for Store {
    async fn take(
        &self,
        name: &str,
        holder: &str,
        renewing: bool,
        now: Millis,
        expires: Millis,
    ) -> Result<Option<Millis>, LeaseError> {
        self.take_lease(name, holder, renewing, now, expires)
            .await
            .map_err(|error| LeaseError(Box::new(error)))
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), LeaseError> {
        self.release_lease(name, holder)
            .await
            .map_err(|error| LeaseError(Box::new(error)))
    }
}
