"""The cockpit's words in English and Simplified Chinese, and how a request's language is
chosen: the ``liucun_lang`` cookie (set by the language switch), else the login's own
language, else the browser's ``Accept-Language``, else English.

Charts and tables that come from the HTML report (``liucun.reports``) keep the report's
English captions; the cockpit's own headings, buttons, labels and messages are here.
"""

from __future__ import annotations

from collections.abc import Callable

#: The cookie the language switch sets.
LANG_COOKIE = "liucun_lang"
#: The languages, the default first.
LANGS: tuple[str, ...] = ("en", "zh-CN")

#: key → (English, 简体中文). Placeholders are ``str.format`` fields.
MESSAGES: dict[str, tuple[str, str]] = {
    # chrome
    "app.title": ("liucun cockpit", "留存驾驶舱"),
    "nav.overview": ("Overview", "总览"),
    "nav.cohorts": ("Cohorts", "同期群"),
    "nav.segments": ("Segments & stages", "分群与阶段"),
    "nav.at_risk": ("At risk", "流失风险"),
    "nav.journeys": ("Journeys", "旅程"),
    "nav.experiments": ("Experiments", "实验"),
    "nav.loyalty": ("Loyalty", "会员忠诚度"),
    "nav.alerts": ("Alerts", "告警"),
    "nav.tasks": ("Service tasks", "服务任务"),
    "nav.users": ("Logins", "账号"),
    "nav.logout": ("Log out", "退出"),
    "nav.search": ("Customer id", "客户 ID"),
    "nav.open": ("Open", "打开"),
    "nav.signed_in": ("{user} · {role}", "{user} · {role}"),
    "role.admin": ("admin", "管理员"),
    "role.analyst": ("analyst", "分析师"),
    "role.operator": ("operator", "运营"),
    "lang.switch": ("中文", "English"),
    "data.as_of": ("Data up to {date} ({tz})", "数据截至 {date}（{tz}）"),
    "data.none": (
        "The warehouse has no events yet: ingest some (liucun ingest) to fill the cockpit.",
        "数据仓库中还没有事件：请先导入数据（liucun ingest）。",
    ),
    "common.none": ("—", "—"),
    "common.empty_list": ("Nothing here.", "暂无内容。"),
    "common.more": ("Show more", "显示更多"),
    "common.previous": ("Previous", "上一页"),
    "common.next": ("Next", "下一页"),
    "common.range": ("{first}–{last} of {total}", "第 {first}–{last} 条，共 {total} 条"),
    "common.customer": ("Customer", "客户"),
    "common.status": ("Status", "状态"),
    "common.actions": ("Actions", "操作"),
    "common.filter": ("Filter", "筛选"),
    "common.save": ("Save", "保存"),
    "common.shown": ("{shown} of {total}", "{total} 条中的 {shown} 条"),
    "common.report_note": (
        "Charts come from the HTML report (liucun report) and keep its English captions.",
        "图表来自 HTML 报告（liucun report），保留报告的英文标题。",
    ),
    # login
    "login.title": ("Sign in", "登录"),
    "login.username": ("Login name", "账号"),
    "login.password": ("Password", "密码"),
    "login.submit": ("Sign in", "登录"),
    "login.failed": ("Wrong login name or password.", "账号或密码错误。"),
    "login.throttled": (
        "Too many failed sign-ins for this login; wait {minutes} minutes and try again.",
        "该账号登录失败次数过多，请 {minutes} 分钟后再试。",
    ),
    "login.hint": (
        "An admin adds logins with: liucun -w WORKSPACE web-users add NAME --role operator",
        "管理员用命令添加账号：liucun -w WORKSPACE web-users add NAME --role operator",
    ),
    # errors
    "error.title": ("Not allowed", "无权操作"),
    "error.csrf": (
        "This form is out of date (its security token does not match your session); "
        "reload the page and try again.",
        "表单已过期（安全令牌与会话不符），请刷新页面后重试。",
    ),
    "error.forbidden": (
        "Your role ({role}) may not do this; it needs {roles}.",
        "您的角色（{role}）不能执行此操作，需要：{roles}。",
    ),
    "error.not_found": ("{what} was not found.", "未找到 {what}。"),
    "error.back": ("Back to the overview", "返回总览"),
    # overview
    "overview.title": ("Overview", "总览"),
    "overview.kpis": ("Headline KPIs", "核心指标"),
    "overview.targets": (
        "Green meets the target in liucun.toml [targets], yellow misses it by at most "
        "{tol}, red by more; grey has no target.",
        "绿色达到 liucun.toml [targets] 中的目标，黄色差距不超过 {tol}，"
        "红色差距更大；灰色未设目标。",
    ),
    "overview.no_targets": (
        "No KPI has a target yet: add a [targets] section to liucun.toml, e.g. "
        "repurchase_rate = 0.3 and churn_rate = 0.4.",
        "尚未设置任何指标目标：请在 liucun.toml 中添加 [targets]，"
        "例如 repurchase_rate = 0.3、churn_rate = 0.4。",
    ),
    "overview.target": ("target {value}", "目标 {value}"),
    "overview.operations": ("Operations", "运营"),
    "overview.open_alerts": ("Open alerts", "未处理告警"),
    "overview.open_tasks": ("Open service tasks", "待处理服务任务"),
    "overview.breached": ("{n} past their SLA", "{n} 个已超 SLA"),
    "overview.active_journeys": ("Active journeys", "运行中的旅程"),
    "overview.at_risk": ("Customers at risk", "高风险客户"),
    "overview.at_risk_note": ("churn risk ≥ {risk}", "流失风险 ≥ {risk}"),
    "status.green": ("on target", "达标"),
    "status.yellow": ("near target", "接近目标"),
    "status.red": ("off target", "未达标"),
    "status.none": ("no target", "无目标"),
    # cohorts / segments
    "cohorts.title": ("Cohort retention", "同期群留存"),
    "segments.title": ("Segments and stages", "分群与生命周期阶段"),
    "segments.rfm": ("RFM segments", "RFM 分群"),
    "segments.stages": ("Lifecycle stages", "生命周期阶段"),
    "segments.segment": ("Segment", "分群"),
    "segments.stage": ("Stage", "阶段"),
    "segments.customers": ("Customers", "客户数"),
    "segments.drill": ("Customers in {name}", "{name} 中的客户"),
    "segments.pick": (
        "Pick a segment or a stage to list its customers.",
        "选择一个分群或阶段以列出其客户。",
    ),
    "segments.recency": ("Days since last order", "距上次下单天数"),
    "segments.cadence": ("Days between orders", "下单间隔天数"),
    "segments.frequency": ("Orders", "订单数"),
    "segments.monetary": ("Spend", "消费额"),
    "segments.p_alive": ("P(alive)", "活跃概率"),
    # customer 360
    "customer.title": ("Customer {id}", "客户 {id}"),
    "customer.profile": ("Profile", "基本信息"),
    "customer.scores": ("Scores", "评分"),
    "customer.reasons": ("Why", "原因"),
    "customer.loyalty": ("Loyalty", "会员"),
    "customer.journeys": ("Journeys", "旅程"),
    "customer.orders": ("Recent orders", "最近订单"),
    "customer.tasks": ("Service tasks", "服务任务"),
    "customer.consents": ("Consents", "授权"),
    "customer.lifecycle": ("Lifecycle", "生命周期"),
    "customer.since": ("since {date}", "自 {date} 起"),
    "customer.rfm": ("RFM", "RFM"),
    "customer.identities": ("Identities", "身份"),
    "customer.contacts": ("Contact on file", "已登记的联系渠道"),
    "customer.events": ("Recent events", "最近事件"),
    "customer.points": ("Points", "积分"),
    "customer.pending": ("Pending", "待生效"),
    "customer.growth": ("Growth value", "成长值"),
    "customer.expiring": ("Expiring in 30 days", "30 天内到期"),
    "customer.coupons": ("Coupons held", "持有优惠券"),
    "customer.tier_label": ("Tier", "等级"),
    "customer.tags": ("Tags", "标签"),
    "customer.no_scores": (
        "Not scored yet: run liucun train and liucun score.",
        "尚未评分：请运行 liucun train 和 liucun score。",
    ),
    "customer.not_found": (
        "There is no customer {id} in the warehouse; check the id (ids are case-sensitive).",
        "数据仓库中没有客户 {id}，请检查 ID（区分大小写）。",
    ),
    "customer.no_loyalty": ("Not a loyalty member.", "不是会员。"),
    "field.churn_risk": ("Churn risk", "流失风险"),
    "field.clv_365d": ("Expected value, 365 days", "预计 365 天价值"),
    "field.p_alive": ("P(alive)", "活跃概率"),
    "field.stage": ("Stage", "阶段"),
    "field.segment": ("Segment", "分群"),
    "field.value_at_risk": ("Value at risk", "风险价值"),
    "field.scored": ("Scored as of {date} by {model}", "{model} 于 {date} 评分"),
    # at risk
    "at_risk.title": ("Customers at risk", "流失风险客户"),
    "at_risk.lead": (
        "Customers with the most expected value at risk (churn risk × expected 365-day "
        "value) from the latest scoring run, with the model's reasons.",
        "最新评分中风险价值（流失风险 × 预计 365 天价值）最高的客户及模型给出的原因。",
    ),
    "at_risk.min_risk": ("Churn risk at least", "流失风险至少"),
    "at_risk.start": ("Start journey", "启动旅程"),
    "at_risk.no_journey": (
        "No journey is active: an admin activates one on the Journeys page.",
        "没有运行中的旅程：请管理员在“旅程”页面激活。",
    ),
    "at_risk.none": (
        "No scores yet: run liucun train and liucun score to list customers at risk.",
        "尚无评分：请运行 liucun train 和 liucun score。",
    ),
    "start.enrolled": (
        "{user} entered {journey} (version {version}, {arm} arm).",
        "{user} 已进入旅程 {journey}（版本 {version}，{arm} 组）。",
    ),
    "start.control": (
        "In the control arm no action is sent: the journey measures itself against it.",
        "对照组不发送任何动作：旅程以此衡量效果。",
    ),
    "start.audience": (
        "{user} is outside the audience of {journey} ({audience}); not enrolled.",
        "{user} 不在旅程 {journey} 的受众内（{audience}），未加入。",
    ),
    "start.reentry": (
        "{user} is already in {journey}, or its re-entry rule ({rule}) keeps them out for now.",
        "{user} 已在旅程 {journey} 中，或其再次进入规则（{rule}）暂不允许。",
    ),
    # journeys
    "journeys.title": ("Journeys", "旅程"),
    "journeys.none": (
        "No journey yet: apply one with liucun journeys apply FILE.yaml.",
        "还没有旅程：请用 liucun journeys apply FILE.yaml 添加。",
    ),
    "journeys.name": ("Journey", "旅程"),
    "journeys.latest": ("Latest version", "最新版本"),
    "journeys.active": ("Active version", "生效版本"),
    "journeys.trigger": ("Trigger", "触发条件"),
    "journeys.purpose": ("Purpose", "用途"),
    "journeys.approved": ("approved", "已审批"),
    "journeys.version": ("Version", "版本"),
    "journeys.created": ("Created", "创建时间"),
    "journeys.created_by": ("By", "创建人"),
    "journeys.approval": ("Approval", "审批"),
    "journeys.not_approved": ("not approved", "未审批"),
    "journeys.graph": ("Version {version}: the nodes", "版本 {version}：节点图"),
    "journeys.versions": ("Versions", "版本"),
    "journeys.results": ("Results per node", "各节点效果"),
    "journeys.no_results": (
        "No customer has entered this journey yet.",
        "还没有客户进入该旅程。",
    ),
    "journeys.approve": ("Approve version {version}", "审批版本 {version}"),
    "journeys.activate": ("Activate version {version}", "激活版本 {version}"),
    "journeys.pause": ("Pause", "暂停"),
    "journeys.resume": ("Resume", "恢复"),
    "journeys.note": ("Note (optional)", "备注（可选）"),
    "journeys.done.approve": (
        "Version {version} of {journey} is approved by {by}.",
        "{journey} 版本 {version} 已由 {by} 审批。",
    ),
    "journeys.done.activate": (
        "{journey} is active on version {version}.",
        "{journey} 已在版本 {version} 上运行。",
    ),
    "journeys.done.pause": ("{journey} is paused.", "{journey} 已暂停。"),
    "journeys.done.resume": ("{journey} is running again.", "{journey} 已恢复运行。"),
    "journeys.state.draft": ("draft", "草稿"),
    "journeys.state.approved": ("approved", "已审批"),
    "journeys.state.active": ("active", "运行中"),
    "journeys.state.paused": ("paused", "已暂停"),
    "journeys.state.archived": ("archived", "已归档"),
    "journeys.state.superseded": ("superseded", "已被取代"),
    # experiments / loyalty
    "experiments.title": ("Experiments and uplift", "实验与增益"),
    "loyalty.title": ("Loyalty program", "会员忠诚度计划"),
    "loyalty.none": (
        "No loyalty program yet: apply one with liucun loyalty program apply FILE.yaml.",
        "还没有会员计划：请用 liucun loyalty program apply FILE.yaml 添加。",
    ),
    # alerts
    "alerts.title": ("Alerts", "告警"),
    "alerts.none": ("No alerts.", "暂无告警。"),
    "alerts.level": ("Level", "级别"),
    "alerts.level.1": ("1 · team", "1 · 团队"),
    "alerts.level.2": ("2 · owner", "2 · 负责人"),
    "alerts.level.3": ("3 · one-to-one", "3 · 一对一"),
    "alerts.raised": ("Raised", "触发时间"),
    "alerts.message": ("What happened", "内容"),
    "alerts.ack": ("Acknowledge", "确认"),
    "alerts.snooze": ("Snooze 24 h", "暂缓 24 小时"),
    "alerts.status.open": ("open", "未处理"),
    "alerts.status.acknowledged": ("acknowledged by {by}", "{by} 已确认"),
    "alerts.status.snoozed": ("snoozed until {until}", "暂缓至 {until}"),
    "alerts.status.resolved": ("resolved", "已解决"),
    "alerts.show": ("Show", "显示"),
    "alerts.show.open": ("open and snoozed", "未处理与暂缓"),
    "alerts.show.all": ("all", "全部"),
    # tasks
    "tasks.title": ("Service task queue", "服务任务队列"),
    "tasks.none": ("No service tasks.", "暂无服务任务。"),
    "tasks.queue": ("Queue", "队列"),
    "tasks.summary": ("Task", "任务"),
    "tasks.sla": ("SLA", "SLA"),
    "tasks.due_in": ("due in {time}", "{time} 后到期"),
    "tasks.overdue": ("overdue by {time}", "已超时 {time}"),
    "tasks.breached": ("breached {time} ago", "{time} 前已违约"),
    "tasks.met": ("answered in time", "按时响应"),
    "tasks.respond": ("Mark responded", "标记已响应"),
    "tasks.close": ("Close", "关闭"),
    "tasks.status.open": ("open", "待处理"),
    "tasks.status.responded": ("responded", "已响应"),
    "tasks.status.closed": ("closed", "已关闭"),
    "tasks.status.breached": ("breached", "已违约"),
    # users
    "users.title": ("Cockpit logins", "驾驶舱账号"),
    "users.add": ("Add a login", "添加账号"),
    "users.role": ("Role", "角色"),
    "users.language": ("Language", "语言"),
    "users.created": ("Added", "创建时间"),
    "users.disable": ("Disable", "停用"),
    "users.enable": ("Enable", "启用"),
    "users.disabled": ("disabled", "已停用"),
    "users.active": ("active", "正常"),
    "users.added": ("Login {user} added ({role}).", "已添加账号 {user}（{role}）。"),
    "users.roles_help": (
        "Analysts read; operators also start journeys, acknowledge alerts and work the "
        "task queue; admins also approve and activate journeys and manage logins.",
        "分析师只读；运营还可启动旅程、确认告警、处理任务；管理员还可审批和激活旅程并管理账号。",
    ),
}


def translate(lang: str, key: str, **fields: object) -> str:
    """The text of ``key`` in ``lang`` (English when ``lang`` is not a cockpit language),
    with ``fields`` filled in; an unknown key is returned as it is."""
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    text = pair[1] if lang == "zh-CN" else pair[0]
    return text.format(**fields) if fields else text


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **fields)`` for templates, bound to ``lang``."""

    def t(key: str, **fields: object) -> str:
        return translate(lang, key, **fields)

    return t


def from_accept_language(header: str | None) -> str | None:
    """The first cockpit language in an ``Accept-Language`` header (by quality, then
    order); any Chinese (zh, zh-CN, zh-Hans, zh-TW …) reads as zh-CN.

    >>> from_accept_language("zh-CN,zh;q=0.9,en;q=0.8")
    'zh-CN'
    >>> from_accept_language("de-DE, en;q=0.5"), from_accept_language(None)
    ('en', None)
    """
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, i, tag.strip().lower()))
    for neg_q, _, tag in sorted(ranked):
        if neg_q >= 0:
            continue
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return None


def choose_language(cookie: str | None, user_language: str | None, accept: str | None) -> str:
    """The request's language: the cookie, the login's language, Accept-Language, else en."""
    for candidate in (cookie, user_language):
        if candidate in LANGS:
            return candidate  # type: ignore[return-value]
    return from_accept_language(accept) or "en"
