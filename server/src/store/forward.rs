//! The store's side of [`Forwarding`]: requests to an engine that runs on another
//! instance, kept until answered (and an hour after, for the asking instance to read).

use super::rows::Millis;
use super::{Store, StoreError};
use crate::source::forward::{ForwardError, Forwarded, Forwarding};
use async_trait::async_trait;

impl From<StoreError> for ForwardError {
    fn from(error: StoreError) -> Self {
        Self(Box::new(error))
    }
}

fn failed(error: sqlx::Error) -> ForwardError {
    ForwardError::from(StoreError::from(error))
}

#[async_trait]
impl Forwarding for Store {
    async fn forward(&self, engine: &str, request: &str, now: Millis) -> Result<i64, ForwardError> {
        let mut writer = self.begin().await?;
        let id: i64 = on_backend!(&mut writer.tx, tx => {
            sqlx::query_scalar(
                "INSERT INTO engine_requests (engine, request, requested_ms) VALUES ($1, $2, $3)
                 RETURNING id",
            )
            .bind(engine)
            .bind(request)
            .bind(now)
            .fetch_one(&mut **tx)
            .await
            .map_err(failed)?
        });
        writer.commit().await?;
        Ok(id)
    }

    async fn answer_of(&self, id: i64) -> Result<Option<String>, ForwardError> {
        let answer: Option<Option<String>> = on_backend!(&self.pool, pool => {
            sqlx::query_scalar("SELECT answer FROM engine_requests WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(failed)?
        });
        Ok(answer.flatten())
    }

    async fn withdraw(&self, id: i64, answer: &str, now: Millis) -> Result<bool, ForwardError> {
        let changed = write_alone!(
            self,
            "UPDATE engine_requests SET answer = $2, answered_ms = $3
             WHERE id = $1 AND taken_ms IS NULL",
            id,
            answer,
            now
        );
        Ok(changed > 0)
    }

    async fn any_waiting(&self, engine: &str) -> Result<bool, ForwardError> {
        let found: Option<i64> = on_backend!(&self.pool, pool => {
            sqlx::query_scalar(
                "SELECT id FROM engine_requests WHERE engine = $1 AND taken_ms IS NULL LIMIT 1",
            )
            .bind(engine)
            .fetch_optional(pool)
            .await
            .map_err(failed)?
        });
        Ok(found.is_some())
    }

    async fn take_forwarded(
        &self,
        engine: &str,
        holder: &str,
        now: Millis,
        limit: i64,
    ) -> Result<Vec<Forwarded>, ForwardError> {
        let mut writer = self.begin().await?;
        let taken: Vec<(i64, String)> = on_backend!(&mut writer.tx, tx => {
            sqlx::query_as(
                "UPDATE engine_requests SET taken_by = $2, taken_ms = $3
                 WHERE id IN (SELECT id FROM engine_requests
                              WHERE engine = $1 AND taken_ms IS NULL ORDER BY id LIMIT $4)
                 RETURNING id, request",
            )
            .bind(engine)
            .bind(holder)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut **tx)
            .await
            .map_err(failed)?
        });
        writer.commit().await?;
        let mut taken: Vec<Forwarded> = taken
            .into_iter()
            .map(|(id, request)| Forwarded { id, request })
            .collect();
        taken.sort_by_key(|request| request.id);
        Ok(taken)
    }

    async fn answer(&self, id: i64, answer: &str, now: Millis) -> Result<(), ForwardError> {
        write_alone!(
            self,
            "UPDATE engine_requests SET answer = $2, answered_ms = $3 WHERE id = $1",
            id,
            answer,
            now
        );
        Ok(())
    }

    async fn answer_orphans(
        &self,
        engine: &str,
        holder: &str,
        answer: &str,
        now: Millis,
    ) -> Result<u64, ForwardError> {
        Ok(write_alone!(
            self,
            "UPDATE engine_requests SET answer = $3, answered_ms = $4
             WHERE engine = $1 AND taken_ms IS NOT NULL AND answer IS NULL
               AND taken_by <> $2",
            engine,
            holder,
            answer,
            now
        ))
    }

    async fn forget_answered(&self, before: Millis) -> Result<u64, ForwardError> {
        Ok(write_alone!(
            self,
            "DELETE FROM engine_requests WHERE answer IS NOT NULL AND answered_ms < $1",
            before
        ))
    }
}
