package com.example.casino.events;

import java.time.Duration;
import java.util.List;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * casino.retry.*: the retry job. {@code claim} is {@code skip-locked} (rows claimed with
 * SELECT ... FOR UPDATE SKIP LOCKED, safe beside other retry passes) or {@code none} (the
 * runbook's job as written: rows read without a lock).
 */
@ConfigurationProperties("casino.retry")
public record RetryProperties(
        @DefaultValue("true") boolean enabled,
        @DefaultValue("60s") Duration interval,
        @DefaultValue({"1m", "5m", "15m", "60m"}) List<Duration> schedule,
        @DefaultValue("5") int maxRetries,
        @DefaultValue("100") int batchSize,
        @DefaultValue("skip-locked") String claim,
        @DefaultValue("10s") Duration sendTimeout) {

    /** The delay before attempt {@code attempt} (1-based); the last delay repeats. */
    public Duration delayBefore(int attempt) {
        int index = Math.max(0, Math.min(attempt - 1, schedule.size() - 1));
        return schedule.get(index);
    }
}
