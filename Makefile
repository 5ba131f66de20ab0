# The two commands of the README:  make run  |  make test
SWIFT ?= swift
STRICT = --explicit-target-dependency-import-check error -Xswiftc -warnings-as-errors
PORT ?= 8080
DB ?= var/ocss.sqlite

PREFIX ?= /usr/local

.PHONY: run test deps build release install format format-check boundaries bench bench-e2e bench-cluster bench-snapshot bench-geocode bench-analytics bench-data check-libs clean

deps:
	@bash scripts/install-deps.sh

release: deps
	$(SWIFT) build -c release --product ocss

## Installs what is missing, builds release, starts ocss on 127.0.0.1:$(PORT) with demo stores.
run: release
	@mkdir -p $(dir $(DB))
	.build/release/ocss serve --bind 127.0.0.1 --port $(PORT) --db $(DB) --demo

## Puts `ocss` on PATH ($(PREFIX)/bin) with its API description and gazetteer in /usr/share/ocss (where it looks).
install: release
	install -D -m 0755 .build/release/ocss $(DESTDIR)$(PREFIX)/bin/ocss
	install -D -m 0644 docs/openapi.yaml $(DESTDIR)/usr/share/ocss/docs/openapi.yaml
	install -d $(DESTDIR)/usr/share/ocss/geodata
	install -m 0644 geodata/* $(DESTDIR)/usr/share/ocss/geodata/

boundaries:
	@bash scripts/check-boundaries.sh

## Formats the tree as .swift-format says (the toolchain's swift-format).
format:
	$(SWIFT) format --in-place --recursive Sources Tests Benchmarks Package.swift

## Fails when a file is not formatted (make format fixes it).
format-check:
	$(SWIFT) format lint --strict --recursive Sources Tests Benchmarks Package.swift

## Installs what is missing, checks formatting and module boundaries, builds everything strictly, runs every test,
## runs the storage and API suites again on PostgreSQL (a throwaway cluster the tests start), fuzzes the API.
test: deps format-check boundaries
	@bash scripts/install-deps.sh test
	$(SWIFT) build --build-tests $(STRICT)
	$(SWIFT) test --skip-build
	OCSS_TEST_DB=postgres $(SWIFT) test --skip-build --filter 'OCSSStoreTests|OCSSAppTests'
	bash scripts/fuzz.sh "$$($(SWIFT) build --show-bin-path)/ocss" 50

BENCH_DATA ?= /tmp/ocss-bench-data
bench-data:
	@test -f $(BENCH_DATA)/orders.csv || python3 Benchmarks/data/gen_dataset.py $(BENCH_DATA)

## Routing benchmark on the shared dataset (see Benchmarks/README.md).
bench: deps bench-data
	$(SWIFT) build -c release --product ocss-bench
	for s in 1k 10k 100k; do .build/release/ocss-bench route --data $(BENCH_DATA) --stores $$s --seconds 5; \
	  .build/release/ocss-bench route --data $(BENCH_DATA) --stores $$s --seconds 5 --reserve; \
	  .build/release/ocss-bench rules --data $(BENCH_DATA) --stores $$s --seconds 5; done

## End-to-end: durable intake vs parse-and-ack, polls vs nginx (Benchmarks/README.md).
bench-e2e: deps bench-data
	bash Benchmarks/e2e.sh

## Cluster on PostgreSQL: migrate, intake vs SQLite, polls over 1 and 3 nodes, failover (Benchmarks/README.md).
bench-cluster: deps bench-data
	@bash scripts/install-deps.sh test
	bash Benchmarks/cluster.sh

## Intake latency while a 1.1 M-row inventory snapshot is applied, vs none (Benchmarks/README.md).
bench-snapshot: deps bench-data
	bash Benchmarks/snapshot-latency.sh

## Geocoder: gazetteer load time and addresses per second on one core vs a naive baseline (Benchmarks/README.md).
bench-geocode: deps
	$(SWIFT) build -c release --product ocss-bench
	.build/release/ocss-bench geocode --seconds 5

## Analytics queries on a million synthetic orders, 30-day and 365-day windows (Benchmarks/README.md).
bench-analytics: deps
	$(SWIFT) build -c release --product ocss-bench
	.build/release/ocss-bench analytics

## The release binary (as the Dockerfile builds it) needs only libraries the runtime image installs.
check-libs: deps
	bash scripts/check-runtime-libs.sh

clean:
	rm -rf .build var
