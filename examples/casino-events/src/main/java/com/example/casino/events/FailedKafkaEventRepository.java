package com.example.casino.events;

import jakarta.persistence.LockModeType;
import jakarta.persistence.QueryHint;
import java.time.Instant;
import java.util.List;
import org.springframework.data.domain.Pageable;
import org.springframework.data.jpa.repository.JpaRepository;
import org.springframework.data.jpa.repository.Lock;
import org.springframework.data.jpa.repository.Query;
import org.springframework.data.jpa.repository.QueryHints;
import org.springframework.data.repository.query.Param;

public interface FailedKafkaEventRepository extends JpaRepository<FailedKafkaEvent, Long> {
    String DUE = "select e from FailedKafkaEvent e where e.status = 'PENDING'"
            + " and (e.nextRetryAt is null or e.nextRetryAt <= :now) order by e.id";

    long countByStatus(String status);

    /** Due rows, read without a lock: the runbook's job as written. */
    @Query(DUE)
    List<FailedKafkaEvent> findDue(@Param("now") Instant now, Pageable page);

    /**
     * Due rows locked for this transaction; rows another pass holds are skipped
     * (lock timeout -2: Hibernate's SKIP LOCKED), so no two passes publish one row.
     */
    @Lock(LockModeType.PESSIMISTIC_WRITE)
    @QueryHints(@QueryHint(name = "jakarta.persistence.lock.timeout", value = "-2"))
    @Query(DUE)
    List<FailedKafkaEvent> claimDue(@Param("now") Instant now, Pageable page);

    @Query("select min(e.createdAt) from FailedKafkaEvent e where e.status = 'PENDING'")
    Instant oldestPendingCreatedAt();
}
