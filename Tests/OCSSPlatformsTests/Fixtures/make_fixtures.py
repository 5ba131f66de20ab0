#!/usr/bin/env python3
"""Writes the push fixtures for Youzan, Meituan and Ele.me next to this file, each signed with
Python's hashlib exactly as FORMATS.md section 9 states, so the Swift verifiers are checked against an
independent implementation. Deterministic: run it again and the bytes are the same.
   youzan.json   trade_TradePaid; msg form-encoded JSON; Event-Sign = md5(client_id + body + secret)
   meituan.form  paid order push; text fields encoded twice; sig = md5(url?sorted k=v& + secret)
   eleme.json    type 10 with userId > 2^53 (signed with its literal digits) and a fee group
"""
import hashlib, json, os, urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))

def write(name, text):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        f.write(text)

msg = json.dumps({"full_order_info": {"order_info": {"tid": "E20261126021300012345", "created": "2026-11-26 10:13:00", "pay_time": "2026-11-26 10:13:05"},
    "address_info": {"receiver_name": "王五", "receiver_tel": "13700137000", "delivery_province": "浙江省", "delivery_city": "杭州市",
                     "delivery_district": "西湖区", "delivery_address": "文三路398号", "delivery_postal_code": "310013",
                     "address_extra": "{\"areaCode\":\"330106\",\"lon\":120.1271,\"lat\":30.2839}", "self_fetch_info": ""},
    "orders": [{"oid": "1", "sku_id": 36541232, "outer_sku_id": "SKU-1001", "title": "农夫山泉 矿泉水 550ml", "num": 2, "price": "29.90"}],
    "remark_info": {"buyer_message": "请放门口"},
    "pay_info": {"payment": "59.80", "post_fee": "0.00"}}}, ensure_ascii=False, separators=(",", ":"))
youzan = json.dumps({"msg": urllib.parse.quote_plus(msg), "type": "trade_TradePaid", "client_id": "yz-client", "msg_id": "m-1",
                     "id": "E20261126021300012345", "kdt_id": 1, "sendCount": 0}, separators=(",", ":"))
write("youzan.json", youzan)

detail = json.dumps([{"app_food_code": "F1", "sku_id": "SKU-1001", "food_name": "矿泉水", "spec": "550ml", "quantity": 2, "price": 29.9,
                     "box_num": 1, "box_price": 0}],
                    ensure_ascii=False, separators=(",", ":"))
params = {"app_id": "mt-app", "timestamp": "1800000000", "order_id": "27061900338318740", "status": "2",
          "recipient_name": urllib.parse.quote("赵六"), "recipient_phone": "13600136000_1234",
          "recipient_address": urllib.parse.quote("浙江省杭州市西湖区文三路398号"), "latitude": "30.281690", "longitude": "120.131740",
          "detail": urllib.parse.quote(detail), "total": "59.8", "shipping_fee": "5", "ctime": "1800000000", "app_poi_code": "HZ-001",
          "caution": urllib.parse.quote("少冰，放前台"), "day_seq": "18", "delivery_time": "0", "pick_type": "0"}
url = "https://ocss.example.cn/v1/platforms/meituan/webhook"
sig = hashlib.md5((url + "?" + "&".join(f"{k}={params[k]}" for k in sorted(params)) + "mt-secret").encode()).hexdigest()
write("meituan.form", "&".join(f"{k}={urllib.parse.quote(v, safe='')}" for k, v in list(params.items()) + [("sig", sig)]))

message = json.dumps({"orderId": "3024712456123", "openId": "HZ-002", "consignee": "孙七", "phoneList": ["13500135000,5678"],
    "address": "杭州市西湖区文三路398号", "deliveryGeo": "120.131740,30.281690", "activeAt": "2026-11-26T10:13:05",
    "description": "不要辣", "daySn": 7,
    "groups": [{"type": "normal", "items": [{"skuId": 200000123456, "extendCode": "SKU-1001", "name": "矿泉水 550ml", "quantity": 1, "price": 29.9}]},
               {"type": "extra", "items": [{"skuId": -70000, "extendCode": "", "quantity": 1, "price": 1.0}]}],
    "totalPrice": 31.9, "deliverFee": 1.0}, ensure_ascii=False, separators=(",", ":"))
fields = {"requestId": "100000000000001", "type": 10, "appId": 12345, "message": message, "shopId": 163,
          "timestamp": 1800000000123, "userId": 123456789012345678901}
joined = "".join(f"{k}={v if isinstance(v, str) else str(v)}" for k, v in sorted(fields.items()))
fields["signature"] = hashlib.md5((joined + "el-secret").encode()).hexdigest().upper()
write("eleme.json", json.dumps(fields, ensure_ascii=False, separators=(",", ":")))
