"""Built-in wording for every event, in both languages; a tenant's saved template for an
event × channel × language replaces it. SAMPLE_VARIABLES fill the template editor's preview."""

DEFAULTS = {
    "ticket_created": {
        "zh-hans": ("工单已受理：{{ ticket_number }}",
                    "您好{{ customer_name }}，您的工单 {{ ticket_number }}（{{ ticket_title }}）已受理，"
                    "我们会尽快处理。进度查询：{{ tracking_url }}"),
        "en": ("Ticket received: {{ ticket_number }}",
               "Hello {{ customer_name }}, your ticket {{ ticket_number }} ({{ ticket_title }}) has been received. "
               "Track it here: {{ tracking_url }}"),
    },
    "ticket_assigned": {
        "zh-hans": ("新派单：{{ ticket_number }}",
                    "{{ actor_name|default:'系统' }} 将工单 {{ ticket_number }}"
                    "（{{ ticket_title }}，{{ ticket_priority }}）派给了您。"
                    "客户：{{ customer_name|default:'—' }}，门店：{{ store_name|default:'—' }}。"
                    "{{ ticket_url }}"),
        "en": ("Assigned to you: {{ ticket_number }}",
               "{{ actor_name|default:'The system' }} assigned {{ ticket_number }} ({{ ticket_title }}, "
               "{{ ticket_priority }}) to you. Customer: {{ customer_name|default:'—' }}. {{ ticket_url }}"),
    },
    "node_due_soon": {
        "zh-hans": ("即将超时：{{ ticket_number }}",
                    "工单 {{ ticket_number }} 的节点“{{ node_name }}”将于 {{ due_at }} 超时，"
                    "请尽快处理。{{ ticket_url }}"),
        "en": ("Due soon: {{ ticket_number }}",
               "Step “{{ node_name }}” of {{ ticket_number }} is due at {{ due_at }}. {{ ticket_url }}"),
    },
    "ticket_escalated": {
        "zh-hans": ("工单升级：{{ ticket_number }}",
                    "工单 {{ ticket_number }}（{{ ticket_title }}）已超时并升级至您处理。{{ ticket_url }}"),
        "en": ("Escalated: {{ ticket_number }}",
               "{{ ticket_number }} ({{ ticket_title }}) is overdue and has been escalated to you. {{ ticket_url }}"),
    },
    "ticket_returned": {
        "zh-hans": ("工单退回：{{ ticket_number }}",
                    "{{ actor_name }} 退回了工单 {{ ticket_number }}："
                    "{{ comment|default:'（无说明）' }} {{ ticket_url }}"),
        "en": ("Returned: {{ ticket_number }}",
               "{{ actor_name }} returned {{ ticket_number }}: "
               "{{ comment|default:'(no reason given)' }} {{ ticket_url }}"),
    },
    "ticket_commented": {
        "zh-hans": ("工单有新回复：{{ ticket_number }}",
                    "{{ actor_name|default:customer_name }} 回复了工单 {{ ticket_number }}："
                    "{{ comment|truncatechars:120 }} {{ tracking_url|default:ticket_url }}"),
        "en": ("New reply on {{ ticket_number }}",
               "{{ actor_name|default:customer_name }} replied on {{ ticket_number }}: {{ comment|truncatechars:120 }}"
               " {{ tracking_url|default:ticket_url }}"),
    },
    "engineer_on_the_way": {
        "zh-hans": ("工程师已出发：{{ ticket_number }}",
                    "您好{{ customer_name }}，工程师{{ assignee_name }}已出发，预计 {{ eta }} 到达。"
                    "进度：{{ tracking_url }}"),
        "en": ("Engineer on the way: {{ ticket_number }}",
               "Hello {{ customer_name }}, engineer {{ assignee_name }} is on the way and should arrive by {{ eta }}. "
               "{{ tracking_url }}"),
    },
    "ticket_resolved": {
        "zh-hans": ("工单已处理完成：{{ ticket_number }}",
                    "您好{{ customer_name }}，您的工单 {{ ticket_number }} 已处理完成，"
                    "欢迎评价本次服务：{{ tracking_url }}"),
        "en": ("Resolved: {{ ticket_number }}",
               "Hello {{ customer_name }}, ticket {{ ticket_number }} is resolved. Please rate our service: "
               "{{ tracking_url }}"),
    },
    "satisfaction_request": {
        "zh-hans": ("服务评价邀请：{{ ticket_number }}",
                    "您好{{ customer_name }}，请花一分钟为本次服务打分：{{ tracking_url }}"),
        "en": ("How did we do? {{ ticket_number }}",
               "Hello {{ customer_name }}, please take a minute to rate our service: {{ tracking_url }}"),
    },
    "parts_low_stock": {
        "zh-hans": ("备件库存不足：{{ part_name }}", "备件“{{ part_name }}”库存仅剩 {{ stock }}，请及时补货。"),
        "en": ("Low stock: {{ part_name }}", "Spare part “{{ part_name }}” is down to {{ stock }}. Please reorder."),
    },
    "settlement_ready": {
        "zh-hans": ("结算单已生成：{{ settlement_period }}",
                    "{{ settlement_period }} 的结算已审批，金额 {{ amount }}。"
                    "{% if settlement_lines %}\n{{ settlement_lines }}{% endif %}"
                    "{% if settlement_url %}\n完整明细：{{ settlement_url }}{% endif %}"),
        "en": ("Settlement ready: {{ settlement_period }}",
               "The statement for {{ settlement_period }} is approved: {{ amount }}."
               "{% if settlement_lines %}\n{{ settlement_lines }}{% endif %}"
               "{% if settlement_url %}\nAll lines: {{ settlement_url }}{% endif %}"),
    },
    "automation_notice": {
        "zh-hans": ("{{ title }}", "{{ body }}"),
        "en": ("{{ title }}", "{{ body }}"),
    },
    "low_rating": {
        "zh-hans": ("差评提醒：{{ ticket_number }} {{ score }} 星",
                    "{{ customer_name|default:'客户' }} 给工单 {{ ticket_number }}（{{ ticket_title }}，"
                    "门店：{{ store_name|default:'—' }}）打了 {{ score }} 星："
                    "{{ comment|default:'（未留言）'|truncatechars:120 }}。"
                    "已生成回访工单 {{ followup_number }}，请尽快跟进。{{ ticket_url }}"),
        "en": ("Low rating: {{ ticket_number }} {{ score }}★",
               "{{ customer_name|default:'A customer' }} rated {{ ticket_number }} ({{ ticket_title }}, "
               "store: {{ store_name|default:'—' }}) {{ score }}★: "
               "{{ comment|default:'(no comment)'|truncatechars:120 }}. "
               "Revisit ticket {{ followup_number }} has been opened; please follow up. {{ ticket_url }}"),
    },
    "quality_report": {
        "zh-hans": ("质检周报：{{ team_name }} {{ week }}",
                    "{{ team_name }} 上周（{{ week }}）质检：{{ tickets }} 张工单，平均 {{ average }} 分，"
                    "发现问题 {{ findings }} 处，最低分工单 {{ lowest }}。详情：{{ report_url }}"),
        "en": ("Weekly quality report: {{ team_name }} {{ week }}",
               "{{ team_name }}, week {{ week }}: {{ tickets }} tickets, average score {{ average }}, "
               "{{ findings }} findings, lowest-scoring {{ lowest }}. {{ report_url }}"),
    },
    "sla_breach_digest": {
        "zh-hans": ("{{ title }}", "{{ body }}\n请跟进以上超时工单，处理情况可在工单列表中查看。"),
        "en": ("{{ title }}",
               "{{ body }}\nPlease follow up on these overdue tickets; the ticket list shows where they stand."),
    },
}

# What the template editor's preview fills in (realistic, clearly made up).
SAMPLE_VARIABLES = {
    "zh-hans": {
        "tenant_name": "味道江南餐饮集团", "ticket_number": "TS-20261123-0001", "ticket_title": "冷柜不制冷",
        "ticket_status": "处理中", "ticket_priority": "紧急", "customer_name": "王女士", "store_name": "徐汇店",
        "assignee_name": "张工", "actor_name": "李经理", "tracking_url": "https://example.com/t/AbCdEf",
        "ticket_url": "https://example.com/tickets/1/", "comment": "已联系厂家，明早上门更换压缩机。",
        "eta": "14:30", "node_name": "上门维修", "due_at": "2026-11-24 18:00", "part_name": "压缩机 QD-65",
        "stock": "2", "settlement_period": "2026年11月", "amount": "¥12,800.00",
        "settlement_lines": "WX-20261104-0001 上门维修: 基价 200.00 · 大区系数 +30.00 · 加急 +69.00 = ¥299.00",
        "settlement_url": "https://example.com/settlement/me/",
        "title": "50 万以上商机进入谈判", "body": "商机“酒店客房空调 200 套”金额 612000 元，请关注。",
        "score": "1", "followup_number": "HF-20261124-0003", "team_name": "华东安装一组", "week": "2026-W47",
        "tickets": "86", "average": "87.5", "findings": "12", "lowest": "TS-20261120-0007（42 分）",
        "report_url": "https://example.com/quality/report/?week=2026-W47",
    },
    "en": {
        "tenant_name": "Jiangnan Dining Group", "ticket_number": "TS-20261123-0001",
        "ticket_title": "Freezer not cooling",
        "ticket_status": "In progress", "ticket_priority": "Urgent", "customer_name": "Ms Wang",
        "store_name": "Xuhui store", "assignee_name": "Engineer Zhang", "actor_name": "Manager Li",
        "tracking_url": "https://example.com/t/AbCdEf", "ticket_url": "https://example.com/tickets/1/",
        "comment": "The maker confirmed; we replace the compressor tomorrow morning.", "eta": "14:30",
        "node_name": "On-site repair", "due_at": "2026-11-24 18:00", "part_name": "Compressor QD-65", "stock": "2",
        "settlement_period": "November 2026", "amount": "¥12,800.00",
        "settlement_lines": "WX-20261104-0001 On-site repair: base 200.00 · Region class +30.00 · Urgent +69.00 "
                            "= ¥299.00",
        "settlement_url": "https://example.com/settlement/me/",
        "title": "Big deal in negotiation", "body": "Opportunity “Hotel air conditioners ×200”, 612,000 yuan.",
        "score": "1", "followup_number": "HF-20261124-0003", "team_name": "East install team 1", "week": "2026-W47",
        "tickets": "86", "average": "87.5", "findings": "12", "lowest": "TS-20261120-0007 (42 points)",
        "report_url": "https://example.com/quality/report/?week=2026-W47",
    },
}


def default_template(event, language):
    """(subject, body) for an event in a language, falling back to Chinese."""
    texts = DEFAULTS[event]
    return texts.get(language) or texts["zh-hans"]


def sample_variables(language):
    return SAMPLE_VARIABLES.get(language) or SAMPLE_VARIABLES["zh-hans"]
