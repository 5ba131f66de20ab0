import FoundationEssentials
import OCSSCore

/// JD POP (京东): pull-driven. The merchant's connector forwards the order id (`{"orderId": …}`:
/// ocss calls the signed `jingdong.pop.order.get`) or the `jingdong_pop_order_get_responce` itself,
/// with the ocss admin token. JOS sign: MD5(secret + sorted k+v + secret), upper hex.
struct JDPopAdapter: PlatformAdapter {
    let platform = "jd"
    let successBody = (contentType: "application/json", body: #"{"success":true}"#)
    func needsBearer(_ m: InboundMessage) -> Bool { true }
    func verify(_ m: InboundMessage, credentials: PlatformCredentials?) throws(AdapterError) {}

    struct Response: Decodable {
        struct DetailInfo: Decodable { var orderInfo: Info }
        var orderDetailInfo: DetailInfo?
    }
    struct Info: Decodable {
        struct Consignee: Decodable {
            var fullname: String?
            var mobile: String?
            var telephone: String?
            var fullAddress: String?
            var province: String?
            var city: String?
            var county: String?
            var town: String?
        }
        struct Item: Decodable {
            var skuId: Literal?
            var outerSkuId: String?
            var itemTotal: Literal
            var jdPrice: Literal?
            var skuName: String?
        }
        var orderId: Literal
        var orderState: String?
        var consigneeInfo: Consignee?
        var itemInfoList: [Item]?
        var orderPayment: Literal?
        var freightPrice: Literal?
        var orderStartTime: String?
        var paymentConfirmTime: String?
        /// The buyer's note to the seller.
        var orderRemark: String?
    }

    func parse(_ m: InboundMessage) throws(AdapterError) -> AdapterOutcome {
        struct Probe: Decodable {
            var jingdong_pop_order_get_responce: Response?
            var orderId: Literal?
        }
        let probe = try AdapterSupport.decode(Probe.self, m.body)
        if let r = probe.jingdong_pop_order_get_responce {
            guard let info = r.orderDetailInfo?.orderInfo else {
                throw AdapterError(.payload, "no orderDetailInfo.orderInfo", field: "jingdong_pop_order_get_responce")
            }
            return try Self.order(from: info)
        }
        guard let id = probe.orderId?.text, !id.isEmpty else {
            throw AdapterError(.payload, "neither an orderId nor a jingdong_pop_order_get_responce", field: "orderId")
        }
        return .needsDetail(platformOrderID: id, topic: "jd_pop_order")
    }

    static func order(from o: Info) throws(AdapterError) -> AdapterOutcome {
        let id = o.orderId.text
        let event: String
        switch o.orderState ?? "" {
        case "WAIT_SELLER_STOCK_OUT": event = "order.paid"
        case "TRADE_CANCELED": event = "order.cancelled"
        default: return .ignored(reason: "orderState \(o.orderState ?? "none") is not routed")
        }
        var lines: [CanonicalOrder.Line] = []
        for (i, it) in (o.itemInfoList ?? []).enumerated() {
            guard let q = Int(it.itemTotal.text), q > 0 else {
                throw AdapterError(.payload, "itemTotal is not a quantity", field: "orderInfo.itemInfoList[\(i)].itemTotal")
            }
            let price = try AdapterSupport.money(it.jdPrice?.text, field: "orderInfo.itemInfoList[\(i)].jdPrice")
            lines.append(
                .init(
                    sku: it.outerSkuId?.nonEmpty, platform_sku_id: it.skuId?.text, quantity: q, unit_price_minor: price,
                    title: it.skuName?.nonEmpty))
        }
        let c = o.consigneeInfo
        // AAS/ ciphertext and masked numbers are never geocoded or stored as real: fall back to the admin fields.
        let addressMasked = AdapterSupport.isMasked(c?.fullAddress)
        let province = Provinces.normalised(c?.province)
        let text =
            addressMasked
            ? [province, c?.city?.nonEmpty, c?.county?.nonEmpty, c?.town?.nonEmpty].compactMap { $0 }.joined()
            : (c?.fullAddress?.nonEmpty ?? "")
        let phone = c?.mobile?.nonEmpty ?? c?.telephone?.nonEmpty
        var order =
            CanonicalOrder(
                platform: "jd", channel: "jd_pop", event: event, platform_order_id: id, idempotency_key: "jd:\(id):\(o.orderState ?? "")",
                buyer: .init(
                    name: AdapterSupport.isMasked(c?.fullname) ? nil : c?.fullname?.nonEmpty,
                    phone: AdapterSupport.isMasked(phone) ? nil : phone),
                shipping: .init(
                    country: "CN", province: province, city: c?.city?.nonEmpty, district: c?.county?.nonEmpty, town: c?.town?.nonEmpty,
                    text: text.nonEmpty, address_precision: addressMasked ? "district" : nil),
                lines: lines, currency: "CNY", total_minor: o.orderPayment.flatMap { Money.minorUnits($0.text) },
                shipping_fee_minor: o.freightPrice.flatMap { Money.minorUnits($0.text) },
                created_at: o.orderStartTime.flatMap { Timestamps.utc($0) }, paid_at: o.paymentConfirmTime.flatMap { Timestamps.utc($0) })
        order.remark = o.orderRemark?.nonEmpty
        order.delivery_by = "courier"
        return .event(order)
    }

    /// The signed `jingdong.pop.order.get` (JOS).
    static func detailRequest(orderID: String, credentials c: PlatformCredentials, at: Double) throws(StatusCallError) -> OutboundRequest {
        var p: [String: String] = [
            "method": "jingdong.pop.order.get", "app_key": try StatusCalls.need(c.app_key, "app_key"),
            "access_token": try StatusCalls.need(c.access_token, "access_token"), "timestamp": shanghaiTime(at), "v": "2.0",
            "360buy_param_json":
                #"{"order_id":"\#(orderID)","optional_fields":"orderId,orderState,consigneeInfo,itemInfoList,orderPayment,freightPrice,orderStartTime,paymentConfirmTime"}"#,
        ]
        p["sign"] = Signatures.top(p, secret: try StatusCalls.need(c.app_secret, "app_secret"), method: "md5")
        return OutboundRequest(
            method: "POST", url: c.base_url + "/routerjson", headers: ["Content-Type": "application/x-www-form-urlencoded"],
            body: Array(formEncode(p.sorted { $0.key < $1.key }).utf8))
    }
}

/// JD 到家 (Daojia): form pushes carrying only ids, signed MD5(secret + sorted k+v + secret) upper hex
/// over the form values; the order comes from the signed `order.es.query`, whose `data` is a JSON
/// string whose `result` is another JSON string. Reply `{"code":"0","msg":"success","data":""}`.
struct JDDaojiaAdapter: PlatformAdapter {
    let platform = "jd_daojia"
    let successBody = (contentType: "application/json", body: #"{"code":"0","msg":"success","data":""}"#)
    var contentTypes: [String] { ["application/x-www-form-urlencoded", "application/json"] }
    /// JSON is the `order.es.query` answer forwarded by the merchant's connector (admin token).
    func needsBearer(_ m: InboundMessage) -> Bool { (m.header("content-type") ?? "").lowercased().hasPrefix("application/json") }

    /// `timestamp` is signed as `yyyy-MM-dd HH:mm:ss`, Beijing time.
    func signedTime(_ m: InboundMessage) -> (field: String, epochSeconds: Int64?)? {
        needsBearer(m) ? nil : ("timestamp", (try? AdapterSupport.formFields(m.body))?["timestamp"].flatMap { Timestamps.epochSeconds($0) })
    }

    func verify(_ m: InboundMessage, credentials: PlatformCredentials?) throws(AdapterError) {
        let secret = try AdapterSupport.requireSecret(credentials)
        let f = try AdapterSupport.formFields(m.body)
        guard let given = f["sign"] else { throw AdapterError(.signature, "missing sign", field: "sign") }
        let want = Signatures.top(f, secret: secret, method: "md5")
        guard Crypto.constantTimeEqual(Array(want.utf8), Array(given.uppercased().utf8)) else {
            throw AdapterError(.signature, "signature does not match", field: "sign")
        }
    }

    func parse(_ m: InboundMessage) throws(AdapterError) -> AdapterOutcome {
        if needsBearer(m) { return try Self.order(fromQuery: m.body) }
        let f = try AdapterSupport.formFields(m.body)
        guard let param = f["jd_param_json"] else {
            if f["encrypt_jd_param_json"] != nil {
                throw AdapterError(.payload, "encrypted pushes are not supported; turn encryption off", field: "encrypt_jd_param_json")
            }
            throw AdapterError(.payload, "jd_param_json is missing", field: "jd_param_json")
        }
        struct Param: Decodable { var billId: Literal; var statusId: Literal? }
        let p: Param
        do { p = try AdapterSupport.decode(Param.self, Array(param.utf8)) } catch {
            throw AdapterError(.payload, error.message, field: "jd_param_json" + (error.field.map { "." + $0 } ?? ""))
        }
        let status = p.statusId?.text ?? ""
        switch status {
        case "32000", "41000": return .needsDetail(platformOrderID: p.billId.text, topic: status)
        case "20020":
            return .event(
                CanonicalOrder(
                    platform: "jd", channel: "jd_daojia", event: "order.cancelled", platform_order_id: p.billId.text,
                    idempotency_key: "jd:\(p.billId.text):\(status)", shipping: .init(), lines: []))
        default: return .ignored(reason: "statusId \(status) is not routed")
        }
    }

    struct Order: Decodable {
        struct Product: Decodable {
            var skuId: Literal?
            var skuIdIsv: String?
            var skuCount: Int
            var skuStorePrice: Literal?
            var skuName: String?
        }
        var orderId: Literal
        var orderStatus: Literal?
        var buyerFullName: String?
        var buyerMobile: String?
        var buyerFullAddress: String?
        var buyerProvinceName: String?
        var buyerCityName: String?
        var buyerCountryName: String?
        var buyerTownName: String?
        var buyerCoordType: Literal?
        var buyerLng: Literal?
        var buyerLat: Literal?
        var deliveryStationNoIsv: String?
        var produceStationNoIsv: String?
        var product: [Product]?
        var orderBuyerPayableMoney: Literal?
        var orderFreightMoney: Literal?
        var orderStartTime: String?
        /// The buyer's note, and the day's order number (JD Daojia's 流水号).
        var orderBuyerRemark: String?
        var orderNum: Literal?
    }

    /// `order.es.query`'s answer: decode `data`, then `result`, then the first order.
    static func order(fromQuery body: [UInt8]) throws(AdapterError) -> AdapterOutcome {
        struct Outer: Decodable { var code: Literal?; var data: String? }
        struct Inner: Decodable { var code: Literal?; var result: String? }
        struct Result: Decodable { var resultList: [Order]? }
        let outer = try AdapterSupport.decode(Outer.self, body)
        guard outer.code?.text == "0", let data = outer.data else {
            throw AdapterError(.payload, "order.es.query failed: \(String(decoding: body.prefix(200), as: UTF8.self))")
        }
        let inner = try AdapterSupport.decode(Inner.self, Array(data.utf8))
        guard let result = inner.result, let o = try AdapterSupport.decode(Result.self, Array(result.utf8)).resultList?.first else {
            throw AdapterError(.payload, "order.es.query returned no order", field: "data.result.resultList")
        }
        let id = o.orderId.text
        let status = o.orderStatus?.text ?? ""
        guard status == "41000" || status == "32000" else { return .ignored(reason: "orderStatus \(status) is not routed") }
        let lines = (o.product ?? []).map { p in
            CanonicalOrder.Line(
                sku: p.skuIdIsv?.nonEmpty, platform_sku_id: p.skuId?.text, quantity: p.skuCount,
                unit_price_minor: p.skuStorePrice.flatMap { Int64($0.text) }, title: p.skuName?.nonEmpty)  // fen already
        }
        var coordinates: CanonicalOrder.Coordinates?
        if let lng = o.buyerLng.flatMap({ Double($0.text) }), let lat = o.buyerLat.flatMap({ Double($0.text) }), lng != 0 || lat != 0 {
            let type = o.buyerCoordType?.text ?? ""
            coordinates = .init(lat: lat, lon: lng, crs: type.isEmpty || type == "1" ? "WGS84" : "GCJ-02")
        }
        let masked = AdapterSupport.isMasked(o.buyerFullAddress) || AdapterSupport.isMasked(o.buyerMobile)
        var order =
            CanonicalOrder(
                platform: "jd", channel: "jd_daojia", event: "order.paid", platform_order_id: id, idempotency_key: "jd:\(id):\(status)",
                buyer: .init(name: o.buyerFullName?.nonEmpty, phone: AdapterSupport.isMasked(o.buyerMobile) ? nil : o.buyerMobile?.nonEmpty),
                shipping: .init(
                    country: "CN", province: Provinces.normalised(o.buyerProvinceName), city: o.buyerCityName?.nonEmpty,
                    district: o.buyerCountryName?.nonEmpty, town: o.buyerTownName?.nonEmpty,
                    text: AdapterSupport.isMasked(o.buyerFullAddress) ? nil : o.buyerFullAddress?.nonEmpty, coordinates: coordinates,
                    address_precision: masked ? "masked" : nil),
                platform_store_id: (o.deliveryStationNoIsv ?? o.produceStationNoIsv)?.nonEmpty,
                lines: lines, currency: "CNY", total_minor: o.orderBuyerPayableMoney.flatMap { Int64($0.text) },
                shipping_fee_minor: o.orderFreightMoney.flatMap { Int64($0.text) }, created_at: o.orderStartTime.flatMap { Timestamps.utc($0) })
        order.remark = o.orderBuyerRemark?.nonEmpty
        order.pickup_no = o.orderNum?.text.nonEmpty
        order.delivery_by = "platform_rider"  // 达达 riders
        return .event(order)
    }

    /// The signed `order.es.query`.
    static func detailRequest(orderID: String, credentials c: PlatformCredentials, at: Double) throws(StatusCallError) -> OutboundRequest {
        var p: [String: String] = [
            "token": try StatusCalls.need(c.access_token, "access_token"), "app_key": try StatusCalls.need(c.app_key, "app_key"),
            "timestamp": shanghaiTime(at), "format": "json", "v": "1.0", "jd_param_json": #"{"orderId":"\#(orderID)"}"#,
        ]
        p["sign"] = Signatures.top(p, secret: try StatusCalls.need(c.app_secret, "app_secret"), method: "md5")
        return OutboundRequest(
            method: "POST", url: c.base_url + "/djapi/order/es/query", headers: ["Content-Type": "application/x-www-form-urlencoded"],
            body: Array(formEncode(p.sorted { $0.key < $1.key }).utf8))
    }
}
