import OCSSCore
package import OCSSStore

/// Why an administrative change was not made.
package enum AdminRefusal: Error, Sendable, Equatable {
    /// No customer, campaign or message with that id.
    case notFound
    /// `retryDeadMessage`: the message is pending or sent, not parked after its last retry.
    case notDead
    /// The change could not be committed (disk full, I/O error, a read-only file).
    case storageUnavailable
}

/// Administrative changes: each commits through the single writer and completes with what it did, or why not.
extension Engine {
    /// Sets where order events are sent and the secret they are signed with; wakes the outbox.
    package func setOutboundWebhook(url: String, secret: String, completion: @escaping @Sendable (Result<Void, AdminRefusal>) -> Void) {
        writer.submit({ db in
            try Repository.setSetting(db, "webhook.url", url)
            try Repository.setSetting(db, "webhook.secret", secret)
        }) { [self] result in
            guard case .success = result else { return completion(.failure(.storageUnavailable)) }
            wakeOutbox()
            completion(.success(()))
        }
    }

    /// Puts a dead outbox message back in line and wakes the outbox.
    package func retryDeadMessage(id: Int64, completion: @escaping @Sendable (Result<Void, AdminRefusal>) -> Void) {
        let now = clock.now()
        writer.submit({ db in try Repository.retryOutbox(db, id: id, now: now) }) { [self] result in
            switch result {
            case .success(true):
                wakeOutbox()
                completion(.success(()))
            case .success(false): completion(.failure(.notDead))
            case .failure: completion(.failure(.storageUnavailable))
            }
        }
    }

    /// Anonymises a customer on their request (totals stay for analytics); completes with the erased record.
    package func eraseCustomer(id: Int64, completion: @escaping @Sendable (Result<CustomerRow?, AdminRefusal>) -> Void) {
        let at = rfc3339(clock.now())
        writer.submit({ db in try Repository.erase(db, customerID: id, at: at) }) { [self] result in
            switch result {
            case .success(true):
                log.info("customer erased", [("customer_id", .int(id))])
                completion(.success(try? readers.read { try Repository.customer($0, id: id) }))
            case .success(false): completion(.failure(.notFound))
            case .failure: completion(.failure(.storageUnavailable))
            }
        }
    }

    /// Creates or replaces a promotion campaign.
    package func saveCampaign(_ row: CampaignRow, completion: @escaping @Sendable (Result<Void, AdminRefusal>) -> Void) {
        writer.submit({ db in try Repository.upsertCampaign(db, row) }) { result in
            completion(result.mapError { _ in .storageUnavailable })
        }
    }

    /// Commits a one-row write (the health check's proof that the database takes writes); completes with the storage
    /// error's text, or nil.
    package func probeWrite(completion: @escaping @Sendable (String?) -> Void) {
        let at = rfc3339(clock.now())
        writer.submit({ db in try Repository.setSetting(db, "health.probe", at) }) { result in
            if case .failure(let e) = result { completion("\(e)") } else { completion(nil) }
        }
    }
}
