"""A corpus of prompts for the personal-data detector and the end-to-end privacy tests.

Each case is a prompt as a user would type it, the kind the detector must report (None for a
clean prompt, which must stay cacheable) and the raw personal value that must never reach the
cache, the lake, stdout/EMF or the logs. The numbers are valid where a validator checks them
(Luhn, IBAN, resident-number check digits) and made up: none belongs to anyone.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    text: str
    kind: str | None
    value: str | None = None  # the personal value, as typed

    @property
    def clean(self) -> bool:
        return self.kind is None


def pii(kind: str, template: str, value: str) -> Case:
    return Case(template.format(value), kind, value)


def clean(text: str) -> Case:
    return Case(text, None)


FW = str.maketrans("0123456789-", "０１２３４５６７８９－")  # full-width digits and hyphen

PHONES = [
    pii("phone", "제 번호는 {} 입니다", "010-1234-5678"),
    pii("phone", "연락처: {}", "01012345678"),
    pii("phone", "전화 주세요 {}", "010 1234 5678"),
    pii("phone", "전화 {} 로", "010.1234.5678"),
    pii("phone", "번호 {} 입니다", "010/1234/5678"),
    pii("phone", "번호 {} 입니다", "010–1234–5678"),  # en dash
    pii("phone", "번호 {} 입니다", "010—1234—5678"),  # em dash
    pii("phone", "번호 {} 입니다", "010 - 1234 - 5678"),
    pii("phone", "번호 {}", "010‐1234‐5678"),  # U+2010 hyphen
    pii("phone", "번호 {}", "010−1234−5678"),  # minus sign
    pii("phone", "번호 {} 요", "010-1234-5678".translate(FW)),
    pii("phone", "번호 {} 요", "01012345678".translate(FW)),
    pii("phone", "call {}", "010\u200b-1234-\u200b5678"),  # zero-width spaces inside
    pii("phone", "phone {}", "010\u00a01234\u00a05678"),  # no-break spaces
    pii("phone", "phone {}", "010\u30001234\u30005678"),  # ideographic spaces
    pii("phone", "international {}", "+82 10-1234-5678"),
    pii("phone", "international {}", "+82-10-1234-5678"),
    pii("phone", "international {}", "+821012345678"),
    pii("phone", "사무실 {}", "02-123-4567"),
    pii("phone", "사무실 {}", "031-1234-5678"),
    pii("phone", "사무실 {}", "051 234 5678"),
    pii("phone", "인터넷 전화 {}", "070-1234-5678"),
    pii("phone", "US office {}", "+1 415 555 2671"),
    pii("phone", "US office {}", "(415) 555-2671"),
    pii("phone", "US office {}", "415-555-2671"),
    pii("phone", "London {}", "+44 20 7946 0958"),
    pii("phone", "Tokyo {}", "+81 3-1234-5678"),
    pii("phone", "Paris {}", "+33 1 42 68 53 00"),
    pii("phone", "Berlin {}", "+49 30 901820"),
    pii("phone", "{}로 문자 주세요", "010-9876-5432"),
    pii("phone", "핸드폰{}입니다", "010-2345-6789"),
    pii("phone", "call {}", "(010) 1234-5678"),
    pii("phone", "tel:{}", "01087654321"),
    pii("phone", "번호 {}", "010 ‒ 1234 ‒ 5678"),  # figure dash
    pii("phone", "번호 {}", "011-234-5678"),
    pii("phone", "번호 {}", "010 ㅡ 1234 ㅡ 5678"),  # the Hangul vowel typed as a dash
    pii("phone", "번호 {}", "010~1234~5678"),
    pii("phone", "번호 {}", "（010）1234－5678"),
]

CARDS = [
    pii("card", "카드번호 {}", "4111 1111 1111 1111"),
    pii("card", "card {}", "4111-1111-1111-1111"),
    pii("card", "card {}", "4111.1111.1111.1111"),
    pii("card", "card {}", "4111/1111/1111/1111"),
    pii("card", "card {}", "4111111111111111"),
    pii("card", "my mastercard {} exp 12/27", "5500 0055 5555 5559"),
    pii("card", "amex {}", "3782 822463 10005"),
    pii("card", "discover {}", "6011111111111117"),
    pii("card", "jcb {}", "3530 1113 3330 0000"),
    pii("card", "visa {}", "4012 8888 8888 1881"),
    pii("card", "mc {}", "5105-1051-0510-5100"),
    pii("card", "2-series {}", "2223 0031 2200 3222"),
    pii("card", "diners {}", "3622 720627 1667"),
    pii("card", "order 12 then card {}", "4111 1111 1111 1111"),
    pii("card", "결제 카드 {} 로 해주세요", "4111–1111–1111–1111"),
    pii("card", "card {}", "4111 1111 1111 1111".translate(FW)),
    pii("card", "card {}", "4111\u200b1111\u200b1111\u200b1111"),
]

IDENTIFIERS = [
    pii("rrn", "주민등록번호 {}", "900101-1234568"),
    pii("rrn", "주민번호 {}", "9001011234568"),
    pii("rrn", "주민번호 {}", "900101 - 1234568"),
    pii("rrn", "주민번호 {}", "900101 1234568"),
    pii("rrn", "주민번호 {}", "851224–2345670"),
    pii("rrn", "주민번호 {}", "020315-3123455"),
    pii("rrn", "주민번호 {}", "210315-3987654"),  # issued after 2020: no check digit
    pii("rrn", "외국인등록번호 {}", "850505-5123456"),
    pii("rrn", "주민번호 {}", "900101-1234568".translate(FW)),
    pii("business_number", "사업자등록번호 {}", "123-45-67890"),
    pii("business_number", "사업자번호 {}", "220-81-12340"),
    pii("business_number", "사업자 {}", "105-81-23450"),
    pii("ssn", "SSN {}", "536-22-1234"),
    pii("ssn", "my social security number is {}", "219-32-7788"),
    pii("ssn", "SSN {}", "536 22 1234"),
    pii("iban", "IBAN {}", "GB82 WEST 1234 5698 7654 32"),
    pii("iban", "IBAN {}", "GB82WEST12345698765432"),
    pii("iban", "Überweisung an {}", "DE89 3704 0044 0532 0130 00"),
    pii("iban", "virement {}", "FR14 2004 1010 0505 0001 3M02 606"),
    pii("iban", "rekening {}", "NL91ABNA0417164300"),
    pii("iban", "cuenta {}", "ES91 2100 0418 4502 0005 1332"),
    pii("passport", "여권번호 {}", "M12345678"),
    pii("passport", "passport {}", "S12345678"),
    pii("passport", "새 여권 {}", "M123A4567"),
    pii("driver_licence", "운전면허 {}", "11-12-123456-78"),
    pii("driver_licence", "면허번호 {}", "서울 12-345678-90"),
    pii("driver_licence", "면허 {}", "경기-21-654321-11"),
    pii("bank_account", "계좌번호 {}", "110-123-456789"),
    pii("bank_account", "국민은행 {} 로 입금", "123456-01-123456"),
    pii("bank_account", "카카오뱅크 {}", "3333-01-1234567"),
    pii("bank_account", "우리은행 계좌 {}", "1002123456789"),
    pii("bank_account", "bank account {}", "356 0123 4567 83"),
    pii("bank_account", "송금 {} 신한", "110-432-123456"),
    pii("bank_account", "농협 {}", "301-1234-5678-11"),
    pii("ssn", "SSN: {}", "536221234"),
    pii("passport", "passport {}", "M 98765432"),
    pii("rrn", "주민번호는{}이고", "900101-1234568"),
    pii("iban", "IBAN: {}", "DE89-3704-0044-0532-0130-00"),
    pii("business_number", "사업자등록번호: {}", "1234567890"),
]

CONTACT = [
    pii("email", "메일 {}", "hong.gildong@example.com"),
    pii("email", "mail me at {}", "jane_doe+news@mail.example.co.kr"),
    pii("email", "메일 {}", "홍길동@회사.한국"),
    pii("email", "mail {}", "user@xn--9n2bp8q.xn--3e0b707e"),
    pii("email", "mail {}", "josé.garcía@correo.es"),
    pii("email", "mail {}", "ＪＯＨＮ＠ＥＸＡＭＰＬＥ．ＣＯＭ"),
    pii("email", "email {}", "a.b-c@sub.domain.example.org"),
    pii("email", "문의: {}", "고객센터@예시.kr"),
    pii("email", "email {}", "first.last@\u200bexample.com"),
    pii("ip_address", "my home ip is {}", "203.0.113.42"),
    pii("ip_address", "서버 {}", "192.168.0.12"),
    pii("ip_address", "ipv6 {}", "2001:db8::8a2e:370:7334"),
    pii("ip_address", "ipv6 {}", "fe80::1ff:fe23:4567:890a"),
    pii("ip_address", "addr {}", "10.20.30.40"),
    pii("mac_address", "MAC {}", "00:1A:2B:3C:4D:5E"),
    pii("mac_address", "MAC {}", "00-1a-2b-3c-4d-5e"),
    pii("mac_address", "switch port {}", "001a.2b3c.4d5e"),
    pii("ip_address", "link-local {}", "fe80::1ff:fe23:4567:890a"),
    pii("email", "mail {}", "kim.minsu@daum。net"),
]

SECRETS = [
    pii("secret", "key {}", "AKIAIOSFODNN7EXAMPLE"),
    pii("secret", "aws_secret_access_key = {}", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    pii("secret", "here are my credentials\n{}\nthanks", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    pii("secret", "github {}", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
    pii("secret", "token {}", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"),
    pii("secret", "slack {}", "xoxb-2048-4096-AbCdEfGhIjKlMnOp"),
    pii("secret", "webhook {}", "https://hooks.slack.com/services/T0000/B0000/XXXXXXXX"),
    pii("secret", "google {}", "AIzaSyA1234567890abcdefghijklmnopqrstuv"),
    pii("secret", "oauth {}", "ya29.a0AfH6SMBx7y6Zq0123456789abcdefgh"),
    pii("secret", "openai {}", "sk-proj-abcdefghijklmnopqrstuvwxyz123456"),
    pii("secret", "openai {}", "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCD"),
    pii(
        "secret",
        "jwt {}",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    pii(
        "secret",
        "Authorization: Bearer {}",
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lkcCJ9.c2lnbmF0dXJl",
    ),
    pii("secret", "key:\n{}", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1234\n-----END RSA PRIVATE KEY-----"),
    pii(
        "secret",
        "{}",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
    ),
    pii("secret", "pem {}", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
    pii("secret", "stripe {}", "sk_live_51H8abcdefghijklmnopqrstuv"),
    pii("secret", "aws_secret_access_key={}", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    pii("secret", "slack app {}", "xapp-1-A0123456789-1234567890123-abcdef0123456789"),
    pii("secret", "client secret {}", "GOCSPX-abcdefghijklmnopqrstuvwxyz12"),
    pii("secret", "DATABASE_URL={}", "postgres://admin:s3cretpw@db.example.com/app"),
    pii("secret", "password: {}", "hunter2!!"),
    pii("secret", "비밀번호: {}", "qwer1234"),
]

CLEAN = [
    clean("주문번호 ORD-20241103-5521 배송 조회해 주세요"),
    clean("Where is order #100234567?"),
    clean("주문번호 2024-118734 상태 알려줘"),
    clean("invoice INV-2024-0001 total"),
    clean("batch 20241129-001 failed"),
    clean("tracking 1Z999AA10123456784"),
    clean("SKU 8801234567891 재고"),
    clean("제품 코드 SKU-88012345"),
    clean("serial SN-4F2A-99B1"),
    clean("회의는 2024-03-15 오후 3시"),
    clean("2024년 11월 29일 일정"),
    clean("deadline 2024/12/31"),
    clean("timestamp 2024-11-29T05:10:00Z"),
    clean("12:30에 만나요"),
    clean("10:30-11:45 meeting"),
    clean("1990-2024 statistics"),
    clean("가격 1,250,000원"),
    clean("₩12,500 입니다"),
    clean("It costs $1,299.99"),
    clean("KRW 15,000 vs USD 11.20"),
    clean("50% 할인"),
    clean("버전 1.2.3 릴리스 노트"),
    clean("upgrade to v2.10.4"),
    clean("Python 3.12.1 and Django 5.2.19"),
    clean("v1.2.3-rc.1 build"),
    clean("node 20.11.0"),
    clean("commit 3f2a9c1e4b5d6e7f8091a2b3c4d5e6f708192a3b"),
    clean("sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    clean("uuid 550e8400-e29b-41d4-a716-446655440000"),
    clean("localhost 127.0.0.1:8000"),
    clean("bind to 0.0.0.0"),
    clean("ISBN 978-3-16-148410-0"),
    clean("HTTP 404 on port 8080"),
    clean("pi is 3.14159"),
    clean("12 + 34 = 46"),
    clean("population 51,740,000"),
    clean("우편번호 06236"),
    clean("coordinates 37.5665, 126.9780"),
    clean("room 1203, floor 12"),
    clean("lottery 3 12 19 27 33 41"),
    clean("phone model SM-S918N"),
    clean("k8s pod web-7d4b9c8f5-x2x9z"),
    clean("base64 aGVsbG8gd29ybGQ="),
    clean("What is a token?"),
    clean("토큰이 뭐예요?"),
    clean("Explain RFC 7231 section 6.5.1"),
    clean("score 98.5 out of 100"),
    clean("1234 5678"),
    clean("an email address looks like name@domain"),
    clean("2023년 매출 3,450억 원"),
    clean("AWS region us-east-1 and eu-west-3"),
    clean("std::vector<int> and Foo::Bar"),
    clean("uptime 12:30:45"),
    clean("send me a password reset link"),
    clean("비밀번호를 잊어버렸어요"),
    clean("firmware v1.2.3.4 released"),
    clean("see https://example.com/docs?page=2"),
    clean("일본어。文章です"),
]

NAMES = [
    pii("name", "My name is {} and I need help", "John Smith"),
    pii("name", "제 이름은 {}입니다", "홍길동"),
    pii("name", "저는 {}예요, 예약 확인해 주세요", "김민수"),
    pii("name", "{}님께 보내는 편지를 써줘", "이영희"),
    pii("name", "{} 씨에게 전해 주세요", "박철수"),
    pii("name", "성명: {}", "최지우"),
    pii("name", "Dear {}, thanks for the order", "Jane Doe"),
    pii("name", "Please forward this to Mrs. {}", "Kowalski"),
    pii("name", "Full name: {}", "Alice Kim"),
]

CLEAN += [
    clean("고객님 안녕하세요, 배송 문의드립니다"),
    clean("선생님께 여쭤보세요"),
    clean("저는 오늘 바빠요"),
    clean("저는 학생입니다"),
    clean("손님께서 오셨습니다"),
    clean("name the function parse_order"),
    clean("참가자 10~20명"),
    clean("snake_case_var_2 in v1_2_3"),
]

CASES: list[Case] = PHONES + CARDS + IDENTIFIERS + CONTACT + SECRETS + NAMES + CLEAN
