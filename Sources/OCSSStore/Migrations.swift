internal import OCSSPostgres

/// Versioned schema. Each migration runs once, in order, inside a transaction; `PRAGMA user_version`
/// records the last applied one. Never edit a shipped migration: append a new one.
public enum Migrations {
    public static let all: [String] = [
        // 1: routing slice.
        """
        CREATE TABLE stores(
          slot INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, code TEXT NOT NULL, name TEXT NOT NULL,
          lon REAL NOT NULL, lat REAL NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, updated_at TEXT NOT NULL);
        CREATE TABLE skus(idx INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE);
        CREATE TABLE inventory(
          store_slot INTEGER NOT NULL REFERENCES stores(slot), sku_idx INTEGER NOT NULL REFERENCES skus(idx),
          on_hand INTEGER NOT NULL, reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
          PRIMARY KEY(store_slot, sku_idx)) WITHOUT ROWID;
        CREATE TABLE orders(
          id INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, body_hash TEXT NOT NULL,
          platform TEXT NOT NULL, platform_order_id TEXT NOT NULL, status TEXT NOT NULL,
          store_slot INTEGER REFERENCES stores(slot), distance_m REAL, payload TEXT NOT NULL,
          explanation TEXT NOT NULL, response TEXT NOT NULL, created_at TEXT NOT NULL);
        CREATE INDEX orders_platform ON orders(platform, platform_order_id);
        CREATE TABLE order_lines(
          order_id INTEGER NOT NULL REFERENCES orders(id), line_no INTEGER NOT NULL, sku TEXT,
          platform_sku_id TEXT, quantity INTEGER NOT NULL, unit_price_minor INTEGER, PRIMARY KEY(order_id, line_no));
        CREATE TABLE reservations(
          order_id INTEGER NOT NULL REFERENCES orders(id), store_slot INTEGER NOT NULL, sku_idx INTEGER NOT NULL,
          quantity INTEGER NOT NULL CHECK (quantity > 0), PRIMARY KEY(order_id, store_slot, sku_idx));
        CREATE TABLE assignments(
          id INTEGER PRIMARY KEY AUTOINCREMENT, order_id INTEGER NOT NULL REFERENCES orders(id),
          store_slot INTEGER NOT NULL REFERENCES stores(slot), status TEXT NOT NULL, distance_m REAL NOT NULL,
          created_at TEXT NOT NULL);
        CREATE INDEX assignments_feed ON assignments(store_slot, id);
        CREATE TABLE order_events(
          id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id), at TEXT NOT NULL,
          actor TEXT NOT NULL, type TEXT NOT NULL, from_status TEXT, to_status TEXT, reason TEXT);
        CREATE INDEX order_events_order ON order_events(order_id, id);
        CREATE TABLE store_tokens(
          token_hash TEXT PRIMARY KEY, store_slot INTEGER NOT NULL REFERENCES stores(slot), created_at TEXT NOT NULL);
        CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """,
        // 2: store workflow, SLA timers, outbox.
        """
        ALTER TABLE stores ADD COLUMN accept_sla_s INTEGER NOT NULL DEFAULT 600;
        ALTER TABLE stores ADD COLUMN ship_sla_s INTEGER NOT NULL DEFAULT 86400;
        ALTER TABLE orders ADD COLUMN cust_lon REAL;
        ALTER TABLE orders ADD COLUMN cust_lat REAL;
        ALTER TABLE orders ADD COLUMN assignment_id INTEGER;
        ALTER TABLE orders ADD COLUMN carrier TEXT;
        ALTER TABLE orders ADD COLUMN tracking_no TEXT;
        ALTER TABLE orders ADD COLUMN status_at REAL;
        ALTER TABLE orders ADD COLUMN escalated INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE orders ADD COLUMN ship_by REAL;
        ALTER TABLE assignments ADD COLUMN reason TEXT;
        CREATE INDEX orders_status ON orders(status);
        CREATE INDEX assignments_order ON assignments(order_id);
        CREATE TABLE outbox(
          id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id), event TEXT NOT NULL,
          target TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
          attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL, last_error TEXT,
          created_at TEXT NOT NULL, sent_at TEXT);
        CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
        """,
        // 3: split orders (partial rejection).
        """
        ALTER TABLE orders ADD COLUMN parent_id INTEGER REFERENCES orders(id);
        CREATE INDEX orders_parent ON orders(parent_id);
        """,
        // 4: inventory sync: snapshot versions per scope ("all" or "store:<id>"), applied delta ids.
        """
        CREATE TABLE inventory_versions(scope TEXT PRIMARY KEY, version INTEGER NOT NULL, applied_at TEXT NOT NULL);
        CREATE TABLE inventory_deltas(id TEXT PRIMARY KEY, applied_at TEXT NOT NULL);
        """,
        // 5: routing policy as data, store rules (capacity, hours, service area, priority), decisions record their policy.
        """
        ALTER TABLE stores ADD COLUMN rules TEXT;
        ALTER TABLE orders ADD COLUMN policy_version INTEGER;
        CREATE TABLE policies(version INTEGER PRIMARY KEY, document TEXT NOT NULL, created_at TEXT NOT NULL, note TEXT);
        CREATE INDEX assignments_created ON assignments(created_at);
        CREATE INDEX orders_created ON orders(created_at);
        """,
        // 6: customers (CRM), promotion campaigns, codes and redemption audit, analytics facts on orders.
        """
        CREATE TABLE customers(
          id INTEGER PRIMARY KEY, phone TEXT UNIQUE, name TEXT, addresses TEXT NOT NULL DEFAULT '[]',
          channels TEXT NOT NULL DEFAULT '[]', order_count INTEGER NOT NULL DEFAULT 0,
          total_spend_minor INTEGER NOT NULL DEFAULT 0, first_order_at TEXT, last_order_at TEXT, erased_at TEXT);
        ALTER TABLE orders ADD COLUMN customer_id INTEGER REFERENCES customers(id);
        ALTER TABLE orders ADD COLUMN day TEXT;
        ALTER TABLE orders ADD COLUMN amount_minor INTEGER;
        ALTER TABLE orders ADD COLUMN units INTEGER;
        ALTER TABLE orders ADD COLUMN province TEXT;
        ALTER TABLE orders ADD COLUMN city TEXT;
        ALTER TABLE orders ADD COLUMN payload_masked TEXT;
        CREATE INDEX orders_customer ON orders(customer_id);
        CREATE INDEX orders_day_facts ON orders(day, platform, store_slot, province, city, amount_minor, units, status, distance_m);
        CREATE INDEX order_events_type ON order_events(type, at);
        CREATE TABLE campaigns(
          id TEXT PRIMARY KEY, name TEXT NOT NULL, benefit TEXT NOT NULL, starts_at TEXT NOT NULL, ends_at TEXT NOT NULL,
          stores TEXT, per_phone_limit INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL);
        CREATE TABLE promo_codes(
          code TEXT PRIMARY KEY, campaign_id TEXT NOT NULL REFERENCES campaigns(id), phone TEXT, issued_at TEXT NOT NULL,
          redeemed_at TEXT, store_slot INTEGER, redeemed_phone TEXT);
        CREATE INDEX promo_codes_campaign ON promo_codes(campaign_id, redeemed_at);
        CREATE INDEX promo_codes_phone ON promo_codes(campaign_id, redeemed_phone);
        CREATE TABLE redemption_attempts(
          id INTEGER PRIMARY KEY, at TEXT NOT NULL, store_slot INTEGER, phone_masked TEXT, code_masked TEXT, result TEXT NOT NULL);
        """,
        // 7: daily rollups kept in the order's own transaction, so analytics read days, not orders.
        """
        CREATE TABLE daily_sales(dim TEXT NOT NULL, day TEXT NOT NULL, key TEXT NOT NULL, orders INTEGER NOT NULL,
          units INTEGER NOT NULL, amount_minor INTEGER NOT NULL, PRIMARY KEY(dim, day, key)) WITHOUT ROWID;
        CREATE TABLE daily_routing(day TEXT PRIMARY KEY, orders INTEGER NOT NULL, routed INTEGER NOT NULL, review INTEGER NOT NULL,
          distance_sum REAL NOT NULL) WITHOUT ROWID;
        CREATE TABLE daily_distance(day TEXT NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY(day, bucket)) WITHOUT ROWID;
        CREATE TABLE daily_events(day TEXT NOT NULL, type TEXT NOT NULL, key TEXT NOT NULL, n INTEGER NOT NULL,
          seconds_sum REAL NOT NULL DEFAULT 0, PRIMARY KEY(day, type, key)) WITHOUT ROWID;
        DROP INDEX orders_day_facts;
        """ + Rollups.rebuildSQLAtMigration7,
        // 8: the dispatcher's "is an earlier message of this order and target still waiting?" check, a seek
        // instead of a walk over every pending message (5,000 pending took 19.6 s a pass; 24 ms with this).
        """
        CREATE INDEX outbox_order_target ON outbox(order_id, target, id);
        """,
        // 9: cancellations of platform orders that were not (yet) orders: a routed event arriving later (a retry after
        // an outage, an out-of-order delivery) must not route a cancelled order.
        """
        CREATE TABLE platform_cancellations(platform TEXT NOT NULL, platform_order_id TEXT NOT NULL, event TEXT NOT NULL,
          at TEXT NOT NULL, PRIMARY KEY(platform, platform_order_id)) WITHOUT ROWID;
        """,
        // 10: the store feed carries changes, not only new assignments: every change to an assignment (accepted,
        // cancelled, taken away by a reroute) moves it to a new feed position, so a store that polls from its cursor
        // learns that an order it is picking was cancelled. Existing rows keep their id as position, so cursors
        // already handed out stay valid; the new index replaces (store_slot, id).
        """
        ALTER TABLE assignments ADD COLUMN feed_pos INTEGER;
        UPDATE assignments SET feed_pos = id;
        CREATE INDEX assignments_feed_pos ON assignments(store_slot, feed_pos);
        DROP INDEX assignments_feed;
        """,
        // 11: money is summed per currency (a USD order counted as yuan), and days follow the business time zone
        // (Asia/Shanghai by default: orders placed 00:00-08:00 Beijing time fell on the previous UTC day). The
        // rollups are rebuilt at the next start of the service, in its zone (`Rollups.rebuildIfZoneChanged`). A rejection
        // records the store that gave the order back (one made with the admin token was charted as store "admin").
        """
        ALTER TABLE orders ADD COLUMN currency TEXT;
        UPDATE orders SET currency = COALESCE(json_extract(payload, '$.currency'), 'CNY') WHERE day IS NOT NULL;
        DROP TABLE daily_sales;
        CREATE TABLE daily_sales(dim TEXT NOT NULL, day TEXT NOT NULL, key TEXT NOT NULL, currency TEXT NOT NULL,
          orders INTEGER NOT NULL, units INTEGER NOT NULL, amount_minor INTEGER NOT NULL, PRIMARY KEY(dim, day, key, currency)) WITHOUT ROWID;
        ALTER TABLE order_events ADD COLUMN store_slot INTEGER;
        UPDATE order_events SET store_slot = CAST(substr(actor, 7) AS INTEGER) WHERE type = 'rejected' AND actor LIKE 'store:%';
        ALTER TABLE customers ADD COLUMN spend_by_currency TEXT NOT NULL DEFAULT '{}';
        UPDATE customers SET spend_by_currency = COALESCE((SELECT json_group_object(cur, amount) FROM
          (SELECT COALESCE(o.currency, 'CNY') AS cur, sum(o.amount_minor) AS amount FROM orders o WHERE o.customer_id = customers.id
           GROUP BY 1)), '{}');
        UPDATE customers SET total_spend_minor = COALESCE(json_extract(spend_by_currency, '$.CNY'), 0);
        DELETE FROM settings WHERE key = 'analytics.time_zone';
        """,
    ]

    /// Applies every migration newer than the database's `user_version`. Returns the new version.
    @discardableResult
    public static func apply(to db: Connection) throws -> Int {
        if db.isPostgres { return try applyPostgres(db) }
        let current = try db.query("PRAGMA user_version") { Int($0.int(0)) }.first ?? 0
        guard current < all.count else { return current }
        for (i, sql) in all.enumerated() where i >= current {
            try db.transaction {
                try db.execute(sql)
                try db.execute("PRAGMA user_version = \(i + 1)")
            }
        }
        return all.count
    }

    /// PostgreSQL starts at the current schema (`PGSchema`, the same tables in its dialect); nodes starting together
    /// take a transaction lock so that one creates it.
    static func applyPostgres(_ db: Connection) throws -> Int {
        try db.transaction {
            _ = try db.query("SELECT pg_advisory_xact_lock(?)", [.int(0x4F43_5353_0001)]) { _ in 0 }
            let exists = try db.query("SELECT to_regclass('ocss_schema') IS NOT NULL", []) { $0.int(0) }.first == 1
            if !exists { try db.execute(PGSchema.create) }
            let version = try db.query("SELECT version FROM ocss_schema", []) { Int($0.int(0)) }.first ?? 0
            guard version == PGSchema.version else {
                throw SQLiteError(code: 1, message: "postgresql schema version \(version); this build knows \(PGSchema.version)", sql: nil)
            }
        }
        return all.count
    }
}
