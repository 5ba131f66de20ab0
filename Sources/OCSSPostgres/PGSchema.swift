/// The ocss schema in PostgreSQL's dialect: the same tables, columns, keys and indexes as the SQLite schema after
/// its migration 11 (`OCSSStore.Migrations`), with PostgreSQL's types (BIGINT for SQLite's INTEGER, DOUBLE PRECISION
/// for REAL). Ids are the engine's own (it hands them out under its lock), so no sequences. `ocss_schema` holds the
/// version, as SQLite's `user_version` does.
public enum PGSchema {
    public static let version = 11

    /// Every table in an order that respects the foreign keys (what a copy inserts first), with the columns that
    /// order its rows (the primary key).
    public static let tables: [(name: String, orderBy: String)] = [
        ("stores", "slot"), ("skus", "idx"), ("inventory", "store_slot, sku_idx"), ("customers", "id"), ("orders", "id"),
        ("order_lines", "order_id, line_no"), ("reservations", "order_id, store_slot, sku_idx"), ("assignments", "id"),
        ("order_events", "id"), ("store_tokens", "token_hash"), ("settings", "key"), ("outbox", "id"),
        ("inventory_versions", "scope"), ("inventory_deltas", "id"), ("policies", "version"), ("campaigns", "id"),
        ("promo_codes", "code"), ("redemption_attempts", "id"), ("daily_routing", "day"), ("daily_distance", "day, bucket"),
        ("daily_events", "day, type, key"), ("platform_cancellations", "platform, platform_order_id"),
        ("daily_sales", "dim, day, key, currency"),
    ]

    public static let create = """
        CREATE TABLE ocss_schema(version BIGINT NOT NULL);
        INSERT INTO ocss_schema VALUES (\(version));
        CREATE TABLE stores(
          slot BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE, code TEXT NOT NULL, name TEXT NOT NULL,
          lon DOUBLE PRECISION NOT NULL, lat DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
          updated_at TEXT NOT NULL, accept_sla_s BIGINT NOT NULL DEFAULT 600, ship_sla_s BIGINT NOT NULL DEFAULT 86400, rules TEXT);
        CREATE TABLE skus(idx BIGINT PRIMARY KEY, sku TEXT NOT NULL UNIQUE);
        CREATE TABLE inventory(
          store_slot BIGINT NOT NULL REFERENCES stores(slot), sku_idx BIGINT NOT NULL REFERENCES skus(idx),
          on_hand BIGINT NOT NULL, reserved BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0), PRIMARY KEY(store_slot, sku_idx));
        CREATE TABLE customers(
          id BIGINT PRIMARY KEY, phone TEXT UNIQUE, name TEXT, addresses TEXT NOT NULL DEFAULT '[]',
          channels TEXT NOT NULL DEFAULT '[]', order_count BIGINT NOT NULL DEFAULT 0, total_spend_minor BIGINT NOT NULL DEFAULT 0,
          first_order_at TEXT, last_order_at TEXT, erased_at TEXT, spend_by_currency TEXT NOT NULL DEFAULT '{}');
        CREATE TABLE orders(
          id BIGINT PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, body_hash TEXT NOT NULL,
          platform TEXT NOT NULL, platform_order_id TEXT NOT NULL, status TEXT NOT NULL,
          store_slot BIGINT REFERENCES stores(slot), distance_m DOUBLE PRECISION, payload TEXT NOT NULL,
          explanation TEXT NOT NULL, response TEXT NOT NULL, created_at TEXT NOT NULL, cust_lon DOUBLE PRECISION,
          cust_lat DOUBLE PRECISION, assignment_id BIGINT, carrier TEXT, tracking_no TEXT, status_at DOUBLE PRECISION,
          escalated BIGINT NOT NULL DEFAULT 0, ship_by DOUBLE PRECISION, parent_id BIGINT REFERENCES orders(id),
          policy_version BIGINT, customer_id BIGINT REFERENCES customers(id), day TEXT, amount_minor BIGINT, units BIGINT,
          province TEXT, city TEXT, payload_masked TEXT, currency TEXT);
        CREATE INDEX orders_platform ON orders(platform, platform_order_id);
        CREATE INDEX orders_status ON orders(status);
        CREATE INDEX orders_parent ON orders(parent_id);
        CREATE INDEX orders_created ON orders(created_at);
        CREATE INDEX orders_customer ON orders(customer_id);
        CREATE TABLE order_lines(
          order_id BIGINT NOT NULL REFERENCES orders(id), line_no BIGINT NOT NULL, sku TEXT, platform_sku_id TEXT,
          quantity BIGINT NOT NULL, unit_price_minor BIGINT, PRIMARY KEY(order_id, line_no));
        CREATE TABLE reservations(
          order_id BIGINT NOT NULL REFERENCES orders(id), store_slot BIGINT NOT NULL, sku_idx BIGINT NOT NULL,
          quantity BIGINT NOT NULL CHECK (quantity > 0), PRIMARY KEY(order_id, store_slot, sku_idx));
        CREATE TABLE assignments(
          id BIGINT PRIMARY KEY, order_id BIGINT NOT NULL REFERENCES orders(id), store_slot BIGINT NOT NULL REFERENCES stores(slot),
          status TEXT NOT NULL, distance_m DOUBLE PRECISION NOT NULL, created_at TEXT NOT NULL, reason TEXT, feed_pos BIGINT);
        CREATE INDEX assignments_order ON assignments(order_id);
        CREATE INDEX assignments_created ON assignments(created_at);
        CREATE INDEX assignments_feed_pos ON assignments(store_slot, feed_pos);
        CREATE TABLE order_events(
          id BIGINT PRIMARY KEY, order_id BIGINT NOT NULL REFERENCES orders(id), at TEXT NOT NULL, actor TEXT NOT NULL,
          type TEXT NOT NULL, from_status TEXT, to_status TEXT, reason TEXT, store_slot BIGINT);
        CREATE INDEX order_events_order ON order_events(order_id, id);
        CREATE INDEX order_events_type ON order_events(type, at);
        CREATE TABLE store_tokens(token_hash TEXT PRIMARY KEY, store_slot BIGINT NOT NULL REFERENCES stores(slot), created_at TEXT NOT NULL);
        CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE outbox(
          id BIGINT PRIMARY KEY, order_id BIGINT NOT NULL REFERENCES orders(id), event TEXT NOT NULL, target TEXT NOT NULL,
          payload TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', attempts BIGINT NOT NULL DEFAULT 0,
          next_attempt_at DOUBLE PRECISION NOT NULL, last_error TEXT, created_at TEXT NOT NULL, sent_at TEXT);
        CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
        CREATE INDEX outbox_order_target ON outbox(order_id, target, id);
        CREATE TABLE inventory_versions(scope TEXT PRIMARY KEY, version BIGINT NOT NULL, applied_at TEXT NOT NULL);
        CREATE TABLE inventory_deltas(id TEXT PRIMARY KEY, applied_at TEXT NOT NULL);
        CREATE TABLE policies(version BIGINT PRIMARY KEY, document TEXT NOT NULL, created_at TEXT NOT NULL, note TEXT);
        CREATE TABLE campaigns(
          id TEXT PRIMARY KEY, name TEXT NOT NULL, benefit TEXT NOT NULL, starts_at TEXT NOT NULL, ends_at TEXT NOT NULL,
          stores TEXT, per_phone_limit BIGINT NOT NULL DEFAULT 1, created_at TEXT NOT NULL);
        CREATE TABLE promo_codes(
          code TEXT PRIMARY KEY, campaign_id TEXT NOT NULL REFERENCES campaigns(id), phone TEXT, issued_at TEXT NOT NULL,
          redeemed_at TEXT, store_slot BIGINT, redeemed_phone TEXT);
        CREATE INDEX promo_codes_campaign ON promo_codes(campaign_id, redeemed_at);
        CREATE INDEX promo_codes_phone ON promo_codes(campaign_id, redeemed_phone);
        CREATE TABLE redemption_attempts(
          id BIGINT PRIMARY KEY, at TEXT NOT NULL, store_slot BIGINT, phone_masked TEXT, code_masked TEXT, result TEXT NOT NULL);
        CREATE TABLE daily_routing(day TEXT PRIMARY KEY, orders BIGINT NOT NULL, routed BIGINT NOT NULL, review BIGINT NOT NULL,
          distance_sum DOUBLE PRECISION NOT NULL);
        CREATE TABLE daily_distance(day TEXT NOT NULL, bucket BIGINT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY(day, bucket));
        CREATE TABLE daily_events(day TEXT NOT NULL, type TEXT NOT NULL, key TEXT NOT NULL, n BIGINT NOT NULL,
          seconds_sum DOUBLE PRECISION NOT NULL DEFAULT 0, PRIMARY KEY(day, type, key));
        CREATE TABLE platform_cancellations(platform TEXT NOT NULL, platform_order_id TEXT NOT NULL, event TEXT NOT NULL,
          at TEXT NOT NULL, PRIMARY KEY(platform, platform_order_id));
        CREATE TABLE daily_sales(dim TEXT NOT NULL, day TEXT NOT NULL, key TEXT NOT NULL, currency TEXT NOT NULL,
          orders BIGINT NOT NULL, units BIGINT NOT NULL, amount_minor BIGINT NOT NULL, PRIMARY KEY(dim, day, key, currency));
        """

    /// The ocss tables already in the database (none in an empty one).
    public static func existingTables(_ db: PGConnection) throws(PGError) -> [String] {
        let names = Set(tables.map(\.name) + ["ocss_schema"])
        return try db.query("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").rows.compactMap { $0[0] }
            .filter { names.contains($0) }.sorted()
    }
}
