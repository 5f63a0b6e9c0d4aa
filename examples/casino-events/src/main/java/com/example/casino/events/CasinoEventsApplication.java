package com.example.casino.events;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.context.properties.ConfigurationPropertiesScan;
import org.springframework.scheduling.annotation.EnableScheduling;

/** The runbook's event flow: EventService → ResilientAsyncEventPublisher → breaker → Kafka. */
@SpringBootApplication
@EnableScheduling
@ConfigurationPropertiesScan
public class CasinoEventsApplication {
    public static void main(String[] args) {
        SpringApplication.run(CasinoEventsApplication.class, args);
    }
}
