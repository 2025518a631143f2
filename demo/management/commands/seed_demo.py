"""`manage.py seed_demo`: two demo tenants (a restaurant chain and an appliance after-sales company)
with regions, stores, staff for every role, customers and opportunities, plus a `root` superuser."""

import random
import string
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import translation

from dashboards.services import rollup_refresh
from scrm.models import (
    Customer,
    CustomerTier,
    Membership,
    Opportunity,
    OpportunityStage,
    Region,
    Role,
    Skill,
    StaffProfile,
    Store,
    Tag,
    Team,
    Tenant,
)
from scrm.phone import phone_normalize
from scrm.services import (
    customer_create,
    opportunity_create,
    region_create,
    region_grant,
    skill_get_or_create,
    staff_create,
    store_create,
    store_grant,
    tag_get_or_create,
    team_create,
    tenant_create,
)
from scrm.tenancy import tenant_scope
from tickets.models import Ticket
from tickets.selectors import template_list

from ...automation_seed import automation_seed
from ...dashboard_seed import dashboard_history_seed
from ...dispatch_seed import dispatch_demo_seed
from ...fieldservice_seed import fieldservice_demo_seed
from ...parts_seed import parts_demo_seed, parts_history_seed
from ...settlement_seed import settlement_seed
from ...sla_seed import sla_demo_seed
from ...ticket_seed import demo_tickets_seed

PASSWORD = "demo12345"
SUPERUSER = "root"
SEED = 2026

ROLE_LABELS = {
    Role.ADMIN: "租户管理员",
    Role.MANAGER: "经理",
    Role.REGIONAL_MANAGER: "区域经理",
    Role.AGENT: "客服",
    Role.ENGINEER: "工程师",
    Role.FINANCE: "财务",
    Role.WAREHOUSE_KEEPER: "库管员",
    Role.PURCHASING: "采购",
}


@dataclass(frozen=True)
class RegionSpec:
    code: str
    name: str
    settlement_class: str
    parent: str | None = None


@dataclass(frozen=True)
class StoreSpec:
    region: str
    code: str
    name: str
    city: str
    district: str
    address: str
    phone: str
    latitude: str
    longitude: str
    # Streets near the store, so generated customer addresses land in the same district.
    roads: tuple[str, ...]


@dataclass(frozen=True)
class StaffSpec:
    username: str
    display_name: str
    role: str
    wecom_userid: str
    region: str | None = None
    home_store: str | None = None
    extra_stores: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    on_duty: bool = True
    max_open_tickets: int = 20


@dataclass(frozen=True)
class TeamSpec:
    name: str
    region: str | None
    lead: str | None


@dataclass
class CustomerSpec:
    name: str
    phone: str
    store: str
    tier: str
    owner: str
    tags: list[str]
    is_company: bool
    email: str = ""
    wecom_external_userid: str = ""
    wechat_openid: str = ""
    address: str = ""
    note: str = ""


@dataclass(frozen=True)
class OpportunitySpec:
    customer_phone: str
    title: str
    amount: Decimal
    stage: str
    owner: str
    signed_date: date | None


@dataclass
class TenantPlan:
    slug: str
    name: str
    regions: list[RegionSpec]
    stores: list[StoreSpec]
    skills: list[str]
    tags: list[str]
    staff: list[StaffSpec]
    teams: list[TeamSpec]
    customers: list[CustomerSpec] = field(default_factory=list)
    opportunities: list[OpportunitySpec] = field(default_factory=list)


# --- 味道江南餐饮集团 ------------------------------------------------------------------------

WEIDAO_REGIONS = [
    RegionSpec("east", "华东", "A"),
    RegionSpec("north", "华北", "A"),
    RegionSpec("south", "华南", "A"),
    RegionSpec("northwest", "西北", "B"),
    RegionSpec("tibet", "西藏", "C"),
]


def _wd(region, code, branch, city, district, address, phone, lat, lng, roads):
    return StoreSpec(region, code, f"味道江南·{branch}", city, district, address, phone, lat, lng, roads)


WEIDAO_STORES = [
    _wd("east", "sh-xuhui", "上海徐汇店", "上海", "徐汇区", "上海市徐汇区漕溪北路88号3楼", "021-64381234",
        "31.193610", "121.436420", ("漕溪北路", "肇嘉浜路", "天钥桥路", "宜山路")),
    _wd("east", "sh-jingan", "上海静安寺店", "上海", "静安区", "上海市静安区南京西路1618号5楼", "021-62881506",
        "31.224420", "121.446930", ("南京西路", "愚园路", "常德路", "延安中路")),
    _wd("east", "sh-lujiazui", "上海陆家嘴店", "上海", "浦东新区", "上海市浦东新区陆家嘴环路1000号2楼", "021-58792210",
        "31.238210", "121.502140", ("陆家嘴环路", "世纪大道", "东方路", "张杨路")),
    _wd("east", "sh-xinzhuang", "上海莘庄店", "上海", "闵行区", "上海市闵行区莘松路380号", "021-64928817",
        "31.111570", "121.385710", ("莘松路", "七莘路", "都市路", "沪闵路")),
    _wd("east", "hz-wensan", "杭州文三路店", "杭州", "西湖区", "杭州市西湖区文三路478号", "0571-88273416",
        "30.277600", "120.128900", ("文三路", "教工路", "学院路", "天目山路")),
    _wd("east", "hz-binjiang", "杭州滨江店", "杭州", "滨江区", "杭州市滨江区江南大道3850号", "0571-86697302",
        "30.208700", "120.211200", ("江南大道", "滨盛路", "长河路", "闻涛路")),
    _wd("east", "nj-xinjiekou", "南京新街口店", "南京", "秦淮区", "南京市秦淮区中山南路79号", "025-84716635",
        "32.038300", "118.784200", ("中山南路", "洪武路", "太平南路", "建康路")),
    _wd("east", "nj-hexi", "南京河西店", "南京", "建邺区", "南京市建邺区江东中路315号", "025-86651208",
        "32.004000", "118.730500", ("江东中路", "庐山路", "乐山路", "嘉陵江东街")),
    _wd("east", "su-guanqian", "苏州观前街店", "苏州", "姑苏区", "苏州市姑苏区观前街168号", "0512-65212876",
        "31.310600", "120.624500", ("观前街", "人民路", "干将西路", "临顿路")),
    _wd("east", "su-jinjihu", "苏州金鸡湖店", "苏州", "工业园区", "苏州市工业园区苏州大道东265号", "0512-62958730",
        "31.318900", "120.678300", ("苏州大道东", "星港街", "现代大道", "旺墩路")),
    _wd("east", "nb-tianyi", "宁波天一广场店", "宁波", "海曙区", "宁波市海曙区中山东路188号", "0574-87283391",
        "29.869300", "121.553700", ("中山东路", "药行街", "开明街", "解放南路")),
    _wd("north", "bj-sanlitun", "北京三里屯店", "北京", "朝阳区", "北京市朝阳区工人体育场北路8号", "010-64178823",
        "39.933600", "116.454700", ("工人体育场北路", "三里屯路", "东大桥路", "新源南路")),
    _wd("north", "bj-zhongguancun", "北京中关村店", "北京", "海淀区", "北京市海淀区中关村大街27号", "010-82683317",
        "39.983600", "116.316100", ("中关村大街", "海淀大街", "知春路", "苏州街")),
    _wd("north", "bj-xidan", "北京西单店", "北京", "西城区", "北京市西城区西单北大街131号", "010-66027741",
        "39.912300", "116.373900", ("西单北大街", "宣武门内大街", "复兴门内大街", "灵境胡同")),
    _wd("north", "bj-wangfujing", "北京王府井店", "北京", "东城区", "北京市东城区王府井大街255号", "010-65126629",
        "39.914300", "116.410600", ("王府井大街", "东单北大街", "金鱼胡同", "灯市口大街")),
    _wd("north", "tj-heping", "天津和平路店", "天津", "和平区", "天津市和平区和平路290号", "022-27302516",
        "39.124000", "117.198300", ("和平路", "南京路", "滨江道", "营口道")),
    _wd("north", "tj-nankai", "天津南开店", "天津", "南开区", "天津市南开区南门外大街2号", "022-27352280",
        "39.132600", "117.170000", ("南门外大街", "鞍山西道", "白堤路", "黄河道")),
    _wd("north", "sjz-changan", "石家庄长安店", "石家庄", "长安区", "石家庄市长安区中山东路188号", "0311-86678452",
        "38.045600", "114.521400", ("中山东路", "建设北大街", "胜利北街", "广安大街")),
    _wd("south", "gz-tianhe", "广州天河店", "广州", "天河区", "广州市天河区天河路208号", "020-38834216",
        "23.134600", "113.323900", ("天河路", "体育西路", "天河北路", "林和西路")),
    _wd("south", "gz-beijinglu", "广州北京路店", "广州", "越秀区", "广州市越秀区北京路328号", "020-83186642",
        "23.125800", "113.269900", ("北京路", "中山五路", "惠福东路", "文德路")),
    _wd("south", "sz-futian", "深圳福田店", "深圳", "福田区", "深圳市福田区福华三路88号", "0755-82793345",
        "22.534000", "114.055500", ("福华三路", "深南大道", "金田路", "益田路")),
    _wd("south", "sz-nanshan", "深圳南山店", "深圳", "南山区", "深圳市南山区科苑南路2666号", "0755-86539927",
        "22.525700", "113.944400", ("科苑南路", "深南大道", "高新南一道", "海德三道")),
    _wd("south", "xm-zhongshan", "厦门中山路店", "厦门", "思明区", "厦门市思明区中山路256号", "0592-2125530",
        "24.456700", "118.080300", ("中山路", "思明南路", "镇海路", "湖滨南路")),
    _wd("south", "dg-nancheng", "东莞南城店", "东莞", "南城街道", "东莞市南城街道鸿福路106号", "0769-22485573",
        "23.016300", "113.749200", ("鸿福路", "东莞大道", "元美路", "莞太路")),
    _wd("northwest", "xa-xiaozhai", "西安小寨店", "西安", "雁塔区", "西安市雁塔区长安中路123号", "029-85263318",
        "34.221800", "108.947900", ("长安中路", "小寨东路", "雁塔路", "小寨西路")),
    _wd("northwest", "xa-zhonglou", "西安钟楼店", "西安", "碑林区", "西安市碑林区东大街2号", "029-87273654",
        "34.260800", "108.950800", ("东大街", "南大街", "骡马市", "端履门")),
    _wd("northwest", "lz-chengguan", "兰州城关店", "兰州", "城关区", "兰州市城关区庆阳路149号", "0931-8456721",
        "36.057800", "103.831800", ("庆阳路", "张掖路", "酒泉路", "中山路")),
    _wd("northwest", "wlmq-tianshan", "乌鲁木齐天山店", "乌鲁木齐", "天山区", "乌鲁木齐市天山区解放北路90号",
        "0991-2818634", "43.797400", "87.618600", ("解放北路", "中山路", "人民路", "新华北路")),
    _wd("northwest", "yc-xingqing", "银川鼓楼店", "银川", "兴庆区", "银川市兴庆区解放东街119号", "0951-6024478",
        "38.486800", "106.231200", ("解放东街", "鼓楼北街", "新华东街", "民族北街")),
    _wd("northwest", "xn-dashizi", "西宁大十字店", "西宁", "城中区", "西宁市城中区西大街40号", "0971-8232276",
        "36.620900", "101.776800", ("西大街", "东大街", "南大街", "长江路")),
    _wd("tibet", "ls-chengguan", "拉萨城关店", "拉萨", "城关区", "拉萨市城关区北京中路68号", "0891-6328845",
        "29.653900", "91.125500", ("北京中路", "宇拓路", "林廓北路", "江苏路")),
    _wd("tibet", "rkz-sangzhuzi", "日喀则店", "日喀则", "桑珠孜区", "日喀则市桑珠孜区上海中路16号", "0892-8826613",
        "29.268400", "88.882600", ("上海中路", "珠峰路", "山东路")),
    _wd("tibet", "linzhi-bayi", "林芝八一店", "林芝", "巴宜区", "林芝市巴宜区广东路55号", "0894-5823417",
        "29.649700", "94.361300", ("广东路", "福建路", "双拥路")),
]

WEIDAO_SKILLS = ["厨房设备维修", "制冷设备维修", "燃气灶具维修", "排烟系统清洗", "水电维修", "收银系统维护"]
WEIDAO_TAGS = ["团购客户", "企业订餐", "老客户", "宴会客户", "会员储值", "外卖常客", "生日宴", "投诉关注"]

WEIDAO_TEAMS = [
    TeamSpec("华东设备维护组", "east", "wd_rm_east"),
    TeamSpec("华北设备维护组", "north", "wd_rm_north"),
    TeamSpec("华南设备维护组", "south", "wd_rm_south"),
    # Spans 西北 and 西藏: too few engineers out west for a team per region.
    TeamSpec("西部设备维护组", None, "wd_rm_northwest"),
]

WEIDAO_STAFF = [
    StaffSpec("wd_admin", "王建国", Role.ADMIN, "WangJianGuo"),
    StaffSpec("wd_manager", "李晓梅", Role.MANAGER, "LiXiaoMei"),
    StaffSpec("wd_rm_east", "陈志强", Role.REGIONAL_MANAGER, "ChenZhiQiang", region="east"),
    StaffSpec("wd_rm_north", "赵立新", Role.REGIONAL_MANAGER, "ZhaoLiXin", region="north"),
    StaffSpec("wd_rm_south", "黄嘉豪", Role.REGIONAL_MANAGER, "HuangJiaHao", region="south"),
    StaffSpec("wd_rm_northwest", "马文斌", Role.REGIONAL_MANAGER, "MaWenBin", region="northwest"),
    StaffSpec("wd_rm_tibet", "次仁多吉", Role.REGIONAL_MANAGER, "CiRenDuoJi", region="tibet"),
    StaffSpec("wd_agent1", "刘婷婷", Role.AGENT, "LiuTingTing"),
    StaffSpec("wd_agent2", "张雨欣", Role.AGENT, "ZhangYuXin"),
    StaffSpec("wd_agent3", "周佳怡", Role.AGENT, "ZhouJiaYi"),
    StaffSpec("wd_agent4", "吴思远", Role.AGENT, "WuSiYuan"),
    StaffSpec("wd_eng1", "孙大海", Role.ENGINEER, "SunDaHai", home_store="sh-xuhui",
              extra_stores=("sh-jingan", "sh-lujiazui", "sh-xinzhuang"),
              skills=("厨房设备维修", "制冷设备维修"), teams=("华东设备维护组",), max_open_tickets=25),
    StaffSpec("wd_eng2", "钱国栋", Role.ENGINEER, "QianGuoDong", home_store="hz-wensan", extra_stores=("hz-binjiang",),
              skills=("燃气灶具维修", "水电维修", "排烟系统清洗"), teams=("华东设备维护组",)),
    StaffSpec("wd_eng3", "郭卫东", Role.ENGINEER, "GuoWeiDong", home_store="bj-sanlitun",
              extra_stores=("bj-zhongguancun", "bj-xidan", "bj-wangfujing"),
              skills=("制冷设备维修", "排烟系统清洗"), teams=("华北设备维护组",)),
    StaffSpec("wd_eng4", "林志伟", Role.ENGINEER, "LinZhiWei", home_store="gz-tianhe", extra_stores=("gz-beijinglu",),
              skills=("厨房设备维修", "水电维修", "收银系统维护"), teams=("华南设备维护组",)),
    # Off duty, so dispatch demos have someone to skip.
    StaffSpec("wd_eng5", "杨宏伟", Role.ENGINEER, "YangHongWei", home_store="xa-xiaozhai",
              extra_stores=("xa-zhonglou",), skills=("厨房设备维修", "燃气灶具维修"), teams=("西部设备维护组",),
              on_duty=False),
    StaffSpec("wd_eng6", "格桑平措", Role.ENGINEER, "GeSangPingCuo", home_store="ls-chengguan",
              extra_stores=("rkz-sangzhuzi", "linzhi-bayi"), skills=("水电维修", "制冷设备维修"),
              teams=("西部设备维护组",), max_open_tickets=15),
    StaffSpec("wd_finance", "徐丽华", Role.FINANCE, "XuLiHua"),
    StaffSpec("wd_keeper", "唐志强", Role.WAREHOUSE_KEEPER, "TangZhiQiang"),
    StaffSpec("wd_purchasing", "韩美玲", Role.PURCHASING, "HanMeiLing"),
]


# --- 美嘉家电售后服务有限公司 ------------------------------------------------------------------

MEIJIA_REGIONS = [
    RegionSpec("east", "华东服务区", "A"),
    # Sub-regions show that a grant on 华东服务区 covers the regions below it.
    RegionSpec("east-sh", "上海片区", "A", parent="east"),
    RegionSpec("east-jz", "苏浙片区", "A", parent="east"),
    RegionSpec("south", "华南服务区", "A"),
    RegionSpec("central", "华中服务区", "B"),
    RegionSpec("southwest", "西南服务区", "C"),
]


def _mj(region, code, branch, city, district, address, phone, lat, lng, roads):
    return StoreSpec(region, code, f"美嘉{branch}服务网点", city, district, address, phone, lat, lng, roads)


MEIJIA_STORES = [
    _mj("east-sh", "sh-pudong", "上海浦东", "上海", "浦东新区", "上海市浦东新区金桥路1088号", "021-50327716",
        "31.262000", "121.586300", ("金桥路", "张杨路", "杨高中路", "锦绣路")),
    _mj("east-sh", "sh-minhang", "上海闵行", "上海", "闵行区", "上海市闵行区虹梅南路2588号", "021-54473082",
        "31.051200", "121.418200", ("虹梅南路", "沪闵路", "都市路", "莘松路")),
    _mj("east-jz", "hz-gongshu", "杭州拱墅", "杭州", "拱墅区", "杭州市拱墅区湖州街568号", "0571-88155209",
        "30.317000", "120.137400", ("湖州街", "莫干山路", "丽水路", "上塘路")),
    _mj("east-jz", "nj-jiangning", "南京江宁", "南京", "江宁区", "南京市江宁区双龙大道1539号", "025-52106637",
        "31.940000", "118.840700", ("双龙大道", "天元中路", "胜太路", "竹山路")),
    _mj("south", "gz-baiyun", "广州白云", "广州", "白云区", "广州市白云区白云大道北1689号", "020-36378845",
        "23.198200", "113.274600", ("白云大道北", "机场路", "同和路", "广园中路")),
    _mj("south", "sz-baoan", "深圳宝安", "深圳", "宝安区", "深圳市宝安区新安六路1000号", "0755-27786104",
        "22.556700", "113.884400", ("新安六路", "宝安大道", "创业一路", "建安一路")),
    _mj("central", "wh-hongshan", "武汉洪山", "武汉", "洪山区", "武汉市洪山区珞喻路726号", "027-87516623",
        "30.513000", "114.399800", ("珞喻路", "鲁磨路", "雄楚大道", "关山大道")),
    _mj("central", "cs-yuelu", "长沙岳麓", "长沙", "岳麓区", "长沙市岳麓区麓山南路932号", "0731-88836215",
        "28.181900", "112.935700", ("麓山南路", "枫林三路", "桐梓坡路", "岳麓大道")),
    _mj("central", "zz-jinshui", "郑州金水", "郑州", "金水区", "郑州市金水区花园路127号", "0371-65937754",
        "34.785000", "113.681700", ("花园路", "农业路", "经三路", "纬五路")),
    _mj("southwest", "cd-wuhou", "成都武侯", "成都", "武侯区", "成都市武侯区人民南路四段27号", "028-85226340",
        "30.624300", "104.071200", ("人民南路四段", "武侯祠大街", "科华北路", "玉林南路")),
]

MEIJIA_SKILLS = [
    "空调安装", "空调维修", "中央空调维保", "冰箱维修", "洗衣机维修", "热水器安装", "油烟机清洗", "燃气灶维修",
]
MEIJIA_TAGS = ["延保客户", "老客户", "以旧换新", "商用客户", "物业合作", "批量安装", "投诉关注"]

MEIJIA_TEAMS = [
    TeamSpec("上海安装一组", "east-sh", "mj_rm_east_sh"),
    TeamSpec("上海维修一组", "east-sh", "mj_rm_east_sh"),
    TeamSpec("苏浙综合服务组", "east-jz", "mj_rm_east_jz"),
    TeamSpec("广深服务组", "south", "mj_rm_south"),
    TeamSpec("华中服务组", "central", "mj_rm_central"),
    TeamSpec("成都服务组", "southwest", "mj_rm_southwest"),
]

MEIJIA_STAFF = [
    StaffSpec("mj_admin", "郑海波", Role.ADMIN, "ZhengHaiBo"),
    StaffSpec("mj_manager", "何静怡", Role.MANAGER, "HeJingYi"),
    StaffSpec("mj_rm_east", "沈国平", Role.REGIONAL_MANAGER, "ShenGuoPing", region="east"),
    StaffSpec("mj_rm_east_sh", "顾晓峰", Role.REGIONAL_MANAGER, "GuXiaoFeng", region="east-sh"),
    StaffSpec("mj_rm_east_jz", "蒋文涛", Role.REGIONAL_MANAGER, "JiangWenTao", region="east-jz"),
    StaffSpec("mj_rm_south", "梁伟健", Role.REGIONAL_MANAGER, "LiangWeiJian", region="south"),
    StaffSpec("mj_rm_central", "彭志刚", Role.REGIONAL_MANAGER, "PengZhiGang", region="central"),
    StaffSpec("mj_rm_southwest", "罗建川", Role.REGIONAL_MANAGER, "LuoJianChuan", region="southwest"),
    StaffSpec("mj_agent1", "宋雅琴", Role.AGENT, "SongYaQin"),
    StaffSpec("mj_agent2", "唐欣然", Role.AGENT, "TangXinRan"),
    StaffSpec("mj_agent3", "韩梦瑶", Role.AGENT, "HanMengYao"),
    StaffSpec("mj_agent4", "冯子豪", Role.AGENT, "FengZiHao"),
    StaffSpec("mj_eng1", "邓卫国", Role.ENGINEER, "DengWeiGuo", home_store="sh-pudong", extra_stores=("sh-minhang",),
              skills=("空调安装", "空调维修", "中央空调维保"), teams=("上海安装一组",), max_open_tickets=25),
    StaffSpec("mj_eng2", "曹永刚", Role.ENGINEER, "CaoYongGang", home_store="sh-minhang", extra_stores=("sh-pudong",),
              skills=("冰箱维修", "洗衣机维修", "燃气灶维修"), teams=("上海维修一组",)),
    StaffSpec("mj_eng3", "袁海军", Role.ENGINEER, "YuanHaiJun", home_store="hz-gongshu",
              skills=("空调维修", "冰箱维修", "洗衣机维修"), teams=("苏浙综合服务组",)),
    StaffSpec("mj_eng4", "蔡建平", Role.ENGINEER, "CaiJianPing", home_store="nj-jiangning",
              skills=("空调安装", "热水器安装", "油烟机清洗"), teams=("苏浙综合服务组",)),
    StaffSpec("mj_eng5", "潘志勇", Role.ENGINEER, "PanZhiYong", home_store="gz-baiyun", extra_stores=("sz-baoan",),
              skills=("空调安装", "空调维修", "热水器安装"), teams=("广深服务组",)),
    StaffSpec("mj_eng6", "余振华", Role.ENGINEER, "YuZhenHua", home_store="sz-baoan",
              skills=("冰箱维修", "洗衣机维修", "油烟机清洗"), teams=("广深服务组",)),
    StaffSpec("mj_eng7", "杜国强", Role.ENGINEER, "DuGuoQiang", home_store="wh-hongshan",
              skills=("空调维修", "中央空调维保", "冰箱维修"), teams=("华中服务组",)),
    # Off duty, so dispatch demos have someone to skip.
    StaffSpec("mj_eng8", "叶春生", Role.ENGINEER, "YeChunSheng", home_store="cs-yuelu",
              skills=("洗衣机维修", "热水器安装", "燃气灶维修"), teams=("华中服务组",), on_duty=False),
    StaffSpec("mj_eng9", "程立军", Role.ENGINEER, "ChengLiJun", home_store="zz-jinshui",
              skills=("空调安装", "油烟机清洗"), teams=("华中服务组",), max_open_tickets=15),
    StaffSpec("mj_eng10", "魏红兵", Role.ENGINEER, "WeiHongBing", home_store="cd-wuhou",
              skills=("空调安装", "空调维修", "冰箱维修", "热水器安装"), teams=("成都服务组",)),
    StaffSpec("mj_finance", "许秀兰", Role.FINANCE, "XuXiuLan"),
    StaffSpec("mj_keeper", "钱德明", Role.WAREHOUSE_KEEPER, "QianDeMing"),
    StaffSpec("mj_purchasing", "孙雅琴", Role.PURCHASING, "SunYaQin"),
]


# --- names, phones and the other generated parts -----------------------------------------

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁沈任姚卢"
    "傅钟姜崔谭陆范汪廖石金贾夏付方邹熊白孟秦邱侯江尹薛段雷龙黎史陶贺毛郝顾龚邵万武钱戴严孔向常汤康易乔赖文"
)
GIVEN_MALE = (
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞", "鑫", "波", "浩",
    "建国", "志强", "海涛", "晓东", "国华", "文博", "子轩", "浩然", "宇航", "振华", "俊杰", "立新", "家明", "国庆",
)
GIVEN_FEMALE = (
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "婷", "雪", "琳", "晶", "洁", "玲", "萍", "燕", "丹", "倩",
    "秀英", "晓梅", "雅琴", "慧敏", "佳怡", "欣怡", "梓涵", "雨萱", "诗涵", "秀兰", "春梅", "丽娟", "美玲", "思琪",
)
TIBETAN_NAMES = ("扎西", "次仁", "卓玛", "旺堆", "央金", "格桑", "平措", "达瓦", "德吉", "拉巴", "尼玛", "白玛", "多吉")
UYGHUR_NAMES = (
    "艾力·买买提", "阿依古丽·吐尔逊", "买买提江·艾山", "古丽娜尔·阿不都", "热依拉·依明", "艾尔肯·托合提",
    "阿迪力·热合曼", "迪丽努尔·卡德尔",
)
# Prefixes of the three carriers, so the numbers look like real mainland mobiles.
MOBILE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155", "156", "157",
    "158", "159", "177", "180", "181", "182", "183", "185", "186", "187", "188", "189", "199",
)
COMPANY_WORDS = {
    "华信": "huaxin", "恒通": "hengtong", "博远": "boyuan", "嘉禾": "jiahe", "瑞丰": "ruifeng", "中天": "zhongtian",
    "新元": "xinyuan", "汇智": "huizhi", "远景": "yuanjing", "鼎盛": "dingsheng", "金桥": "jinqiao",
    "宏达": "hongda", "万象": "wanxiang", "星辰": "xingchen", "启明": "qiming", "同创": "tongchuang",
}
ESTATES = (
    "阳光花园", "锦绣家园", "翠湖苑", "金色港湾", "怡景苑", "春江花园", "丽景湾", "和平里小区", "东湖新村", "桂花园",
)
STAGE_WEIGHTS = {
    OpportunityStage.LEAD: 20,
    OpportunityStage.QUALIFIED: 20,
    OpportunityStage.PROPOSAL: 20,
    OpportunityStage.NEGOTIATION: 15,
    OpportunityStage.WON: 15,
    OpportunityStage.LOST: 10,
}
TIER_WEIGHTS_PERSON = {CustomerTier.NORMAL: 75, CustomerTier.VIP: 19, CustomerTier.SVIP: 6}
TIER_WEIGHTS_COMPANY = {CustomerTier.NORMAL: 40, CustomerTier.VIP: 40, CustomerTier.SVIP: 20}
# Settlement class A markets are busier, so they get more of the generated customers.
STORE_WEIGHT_BY_CLASS = {"A": 4, "B": 2, "C": 1}


class Generator:
    """Everything random in one place: the plan is computed before any database access, so it is
    identical on every run and idempotency can rely on natural keys (phones, usernames)."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.phones = set()

    def mobile(self):
        while True:
            number = self.rng.choice(MOBILE_PREFIXES) + "".join(self.rng.choices(string.digits, k=8))
            if number not in self.phones:
                self.phones.add(number)
                return number

    def han_name(self):
        given = GIVEN_MALE if self.rng.random() < 0.5 else GIVEN_FEMALE
        return self.rng.choice(SURNAMES) + self.rng.choice(given)

    def person_name(self, city):
        if city in ("拉萨", "日喀则", "林芝") and self.rng.random() < 0.6:
            first, second = self.rng.sample(TIBETAN_NAMES, 2)
            return first + second
        if city == "乌鲁木齐" and self.rng.random() < 0.5:
            return self.rng.choice(UYGHUR_NAMES)
        return self.han_name()

    def wecom_external_userid(self):
        return "wm" + "".join(self.rng.choices(string.ascii_letters + string.digits, k=30))

    def wechat_openid(self):
        return "o" + "".join(self.rng.choices(string.ascii_letters + string.digits + "_-", k=27))

    def personal_email(self):
        if self.rng.random() < 0.6:
            return f"{self.rng.randint(100000000, 2999999999)}@qq.com"
        letters = "".join(self.rng.choices(string.ascii_lowercase, k=self.rng.randint(5, 9)))
        return f"{letters}{self.rng.randint(1970, 2005)}@163.com"

    def home_address(self, store):
        road = self.rng.choice(store.roads)
        prefix = f"{store.city}市{store.district}{road}"
        # Shanghai addresses are written by lane (弄), elsewhere by estate, building and unit.
        if store.city == "上海":
            return f"{prefix}{self.rng.randint(50, 1999)}弄{self.rng.randint(1, 60)}号{self._room()}室"
        estate = self.rng.choice(ESTATES)
        building, unit = self.rng.randint(1, 28), self.rng.randint(1, 4)
        return f"{prefix}{self.rng.randint(1, 999)}号{estate}{building}栋{unit}单元{self._room()}室"

    def office_address(self, store):
        road = self.rng.choice(store.roads)
        return f"{store.city}市{store.district}{road}{self.rng.randint(1, 1999)}号{self.rng.randint(2, 32)}楼"

    def _room(self):
        return f"{self.rng.randint(1, 33)}{self.rng.randint(1, 4):02d}"

    def weighted(self, weights):
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def signed_date(self):
        return date(2025, 3, 1) + timedelta(days=self.rng.randint(0, 600))

    def amount(self, qty, unit, discount=True):
        value = Decimal(qty) * Decimal(unit)
        # Some deals carry a negotiated discount, which gives amounts with jiao and fen.
        if discount and self.rng.random() < 0.3:
            value *= self.rng.choice((Decimal("0.95"), Decimal("0.92"), Decimal("0.88")))
        return value.quantize(Decimal("0.01"))


def _plan_customers(gen, plan, count, company_share, make_company, person_notes, person_tags):
    stores = plan.stores
    region_class = {region.code: region.settlement_class for region in plan.regions}
    weights = [STORE_WEIGHT_BY_CLASS[region_class[store.region]] for store in stores]
    agents = [s.username for s in plan.staff if s.role == Role.AGENT]
    rm_by_region = {s.region: s.username for s in plan.staff if s.role == Role.REGIONAL_MANAGER}
    names = set()
    for _index in range(count):
        store = gen.rng.choices(stores, weights=weights)[0]
        is_company = gen.rng.random() < company_share
        while True:
            if is_company:
                name, email, tags, note = make_company(gen, store)
            else:
                name, email, tags, note = gen.person_name(store.city), "", [], ""
            if name not in names:
                names.add(name)
                break
        if not is_company:
            if gen.rng.random() < 0.15:
                email = gen.personal_email()
            tags = gen.rng.sample(person_tags, gen.rng.choice((0, 1, 1, 2)))
            note = gen.rng.choice(person_notes) if gen.rng.random() < 0.35 else ""
            if gen.rng.random() < 0.05:
                tags.append("投诉关注")
        owner = gen.rng.choice([*agents, rm_by_region.get(store.region) or agents[0]])
        plan.customers.append(CustomerSpec(
            name=name,
            phone=gen.mobile(),
            store=store.code,
            tier=gen.weighted(TIER_WEIGHTS_COMPANY if is_company else TIER_WEIGHTS_PERSON),
            owner=owner,
            tags=tags,
            is_company=is_company,
            email=email,
            wecom_external_userid=gen.wecom_external_userid() if gen.rng.random() < 0.4 else "",
            wechat_openid=gen.wechat_openid() if gen.rng.random() < 0.25 else "",
            address=(gen.office_address(store) if is_company else
                     gen.home_address(store) if plan.slug == "meijia" or gen.rng.random() < 0.3 else ""),
            note=note,
        ))


def _plan_opportunities(gen, plan, fixed, company_deals, person_deals, count):
    """`fixed` come first (the big deals that later approval demos need), then random ones:
    company customers get the company deals, people the personal ones. A deal's `client` word
    (酒店, 物业 …) steers it to a fitting company when there is one."""
    stores = {store.code: store for store in plan.stores}
    companies = [c for c in plan.customers if c.is_company]
    people = [c for c in plan.customers if not c.is_company]
    seen = set()

    def add(customer, title, amount, stage):
        seen.add((customer.phone, title))
        signed = gen.signed_date() if stage == OpportunityStage.WON else None
        plan.opportunities.append(OpportunitySpec(customer.phone, title, amount, stage, customer.owner, signed))

    def pick(pool, client):
        return gen.rng.choice([c for c in pool if client in c.name] or pool)

    for title, amount, stage, client in fixed:
        add(pick(companies, client), title, Decimal(amount), stage)
    while len(plan.opportunities) < count:
        is_company = gen.rng.random() < 0.6
        make = gen.rng.choice(company_deals if is_company else person_deals)
        customer = pick(companies if is_company else people, make.client)
        title, amount = make(gen, stores[customer.store])
        if (customer.phone, title) not in seen:
            add(customer, title, amount, gen.weighted(STAGE_WEIGHTS))


def _company_name(gen, city, kinds):
    word = gen.rng.choice(list(COMPANY_WORDS))
    return word, f"{city}{word}{gen.rng.choice(kinds)}"


def _weidao_company(gen, store):
    word, name = _company_name(
        gen, store.city, ("科技有限公司", "网络科技有限公司", "贸易有限公司", "物流有限公司", "医药有限公司",
                          "文化传媒有限公司", "信息技术有限公司", "建设工程有限公司"),
    )
    tags = ["企业订餐"]
    if gen.rng.random() < 0.5:
        tags.append("团购客户")
    if gen.rng.random() < 0.4:
        tags.append("老客户")
    headcount = gen.rng.choice((60, 120, 200, 350, 500, 800))
    note = (f"联系人：{gen.rng.choice(SURNAMES)}经理（行政部），约 {headcount} 人，"
            f"每周{gen.rng.choice('一二三四五')}订工作餐")
    email = f"{gen.rng.choice(('hr', 'admin', 'xingzheng'))}@{COMPANY_WORDS[word]}.example.com"
    return name, email if gen.rng.random() < 0.6 else "", tags, note


def _meijia_company(gen, store):
    kinds = ("物业管理有限公司", "酒店管理有限公司", "餐饮管理有限公司", "商贸有限公司", "教育科技有限公司")
    word, name = _company_name(gen, store.city, kinds)
    tags = ["商用客户"]
    if "物业" in name:
        tags.append("物业合作")
    if gen.rng.random() < 0.4:
        tags.append("批量安装")
    note = f"联系人：{gen.rng.choice(SURNAMES)}工（工程部），设备清单见合同附件"
    email = f"gongcheng@{COMPANY_WORDS[word]}.example.com"
    return name, email if gen.rng.random() < 0.7 else "", tags, note


def _deal(title_format, quantities, units, discount=True, client=""):
    def make(gen, _store):
        qty = gen.rng.choice(quantities)
        return title_format.format(n=qty), gen.amount(qty, gen.rng.choice(units), discount)

    make.client = client
    return make


def _flat_deal(title, amounts):
    def make(gen, _store):
        return title, gen.amount(1, gen.rng.choice(amounts), discount=False)

    make.client = ""
    return make


def _city_deal(title_format, amounts, client=""):
    def make(gen, store):
        return title_format.format(city=store.city), gen.amount(1, gen.rng.choice(amounts), discount=False)

    make.client = client
    return make


WEIDAO_FIXED_DEALS = [
    ("年会包场 80 桌", "128000.00", OpportunityStage.NEGOTIATION, ""),
    ("集团年度宴请框架协议", "860000.00", OpportunityStage.PROPOSAL, ""),
    ("员工午餐配送年度合同（300 人）", "1650000.00", OpportunityStage.NEGOTIATION, ""),
    ("园区食堂外包三年合同", "2380000.00", OpportunityStage.QUALIFIED, ""),
    ("员工早餐供应年度合同", "720000.00", OpportunityStage.WON, ""),
]
WEIDAO_COMPANY_DEALS = [
    _deal("年会包场 {n} 桌", range(30, 121, 5), (1280, 1600, 1880, 2280)),
    _deal("企业年夜饭 {n} 桌", range(20, 61, 2), (1680, 1880, 2280)),
    _deal("中秋礼盒团购 {n} 份", (200, 300, 500, 800, 1200), (168, 198, 268, 368)),
    _deal("端午粽子礼盒 {n} 份", (300, 500, 1000, 1500), (88, 128, 158)),
    _deal("客户答谢会自助餐 {n} 人", (100, 150, 200, 300, 400), (168, 198, 238)),
    _deal("部门团建聚餐 {n} 桌", range(5, 21), (1280, 1580)),
    _deal("商务宴请季度套餐（{n} 场）", (6, 8, 10, 12), (4800, 6800, 8800)),
    _deal("员工午餐配送年度合同（{n} 人）", (60, 80, 100), (5500,), discount=False),
]
WEIDAO_PERSON_DEALS = [
    _deal("婚宴 {n} 桌", range(18, 46), (3888, 4688, 5888)),
    _deal("寿宴 {n} 桌", range(6, 16), (1888, 2588)),
    _deal("满月酒 {n} 桌", range(5, 13), (1688, 2188)),
    _deal("谢师宴 {n} 桌", range(6, 16), (1588, 1988)),
    _flat_deal("储值会员卡充值", (5000, 10000, 20000, 50000)),
    _flat_deal("生日宴包厢预订", (2888, 3888, 5888)),
]

MEIJIA_FIXED_DEALS = [
    ("门店中央空调改造", "560000.00", OpportunityStage.NEGOTIATION, "商贸"),
    ("写字楼中央空调年度维保合同", "680000.00", OpportunityStage.PROPOSAL, "物业"),
    ("学校宿舍空调安装 240 台", "768000.00", OpportunityStage.QUALIFIED, "教育"),
    ("酒店客房空调更换 180 套", "594000.00", OpportunityStage.WON, "酒店"),
]
MEIJIA_COMPANY_DEALS = [
    _deal("小区热水器批量更换 {n} 台", (50, 80, 120, 150, 200), (2380, 2800, 3280), client="物业"),
    _deal("酒店客房空调清洗 {n} 间", (80, 120, 200, 300, 400), (120, 150, 180), client="酒店"),
    _deal("学校宿舍空调安装 {n} 台", (60, 100, 150), (2600, 3200), client="教育"),
    _deal("业主家电延保团购 {n} 户", (50, 100, 200, 300), (299, 399, 599), client="物业"),
    _deal("后厨油烟机清洗年度合同（{n} 台）", (10, 20, 30, 40), (1200, 1500), client="餐饮"),
    _city_deal("{city}门店商用冷柜年度维保", (24000, 36000, 58000, 80000), client="商贸"),
]
MEIJIA_PERSON_DEALS = [
    _flat_deal("全屋家电延保 3 年", (1680, 2680, 3680)),
    _flat_deal("空调移机加氟", (380, 480, 680)),
    _flat_deal("厨房油烟机深度清洗", (198, 298, 398)),
    _flat_deal("以旧换新：滚筒洗衣机", (3299, 4599, 5999)),
    _flat_deal("热水器以旧换新", (2599, 3899)),
    _deal("新房空调采购安装 {n} 台", (2, 3, 4, 5), (3800, 5200)),
]

WEIDAO_PERSON_NOTES = (
    "不吃辣，常点松鼠桂鱼", "每月家庭聚餐一到两次", "对花生过敏，上菜前需提醒", "喜欢靠窗的包厢",
    "储值会员，余额两千元以上", "常点外卖，备注少放葱", "老人同行，需要软烂菜品",
)
MEIJIA_PERSON_NOTES = (
    "家中有老人，上门前请先电话联系", "工作日白天不在家，约周末上门", "小区需登记车牌", "上次维修满意，指定原师傅",
    "空调为 2016 年购买，已过保", "楼层较高无电梯，需带外机支架",
)


def build_plans():
    gen = Generator(SEED)
    weidao = TenantPlan("weidao", "味道江南餐饮集团", WEIDAO_REGIONS, WEIDAO_STORES, WEIDAO_SKILLS, WEIDAO_TAGS,
                        WEIDAO_STAFF, WEIDAO_TEAMS)
    meijia = TenantPlan("meijia", "美嘉家电售后服务有限公司", MEIJIA_REGIONS, MEIJIA_STORES, MEIJIA_SKILLS, MEIJIA_TAGS,
                        MEIJIA_STAFF, MEIJIA_TEAMS)
    everyone = (*WEIDAO_STAFF, *MEIJIA_STAFF)
    parts_roles = (Role.WAREHOUSE_KEEPER, Role.PURCHASING)
    staff_phones = {spec.username: gen.mobile() for spec in everyone if spec.role not in parts_roles}
    # The spare parts roles came later (issue 19): their numbers come from a stream of their own, so
    # every phone, name and deal generated after these stays what it was.
    later = Generator(SEED + 19)
    staff_phones.update({spec.username: later.mobile() for spec in everyone if spec.role in parts_roles})
    _plan_customers(gen, weidao, 120, 0.25, _weidao_company, WEIDAO_PERSON_NOTES,
                    ["老客户", "宴会客户", "会员储值", "外卖常客", "生日宴"])
    _plan_customers(gen, meijia, 80, 0.2, _meijia_company, MEIJIA_PERSON_NOTES, ["延保客户", "老客户", "以旧换新"])
    _plan_opportunities(gen, weidao, WEIDAO_FIXED_DEALS, WEIDAO_COMPANY_DEALS, WEIDAO_PERSON_DEALS, 40)
    _plan_opportunities(gen, meijia, MEIJIA_FIXED_DEALS, MEIJIA_COMPANY_DEALS, MEIJIA_PERSON_DEALS, 40)
    return [weidao, meijia], staff_phones


# --- writing ---------------------------------------------------------------------------------

COUNTED = [
    ("区域", Region), ("门店/网点", Store), ("团队", Team), ("技能", Skill), ("标签", Tag), ("员工", StaffProfile),
    ("成员", Membership), ("客户", Customer), ("商机", Opportunity), ("工单", Ticket),
]


def _counts():
    return {label: model.objects.count() for label, model in COUNTED}


class TenantSeeder:
    """Writes one plan through scrm.services, skipping whatever already exists by natural key."""

    def __init__(self, tenant, plan, staff_phones):
        self.tenant = tenant
        self.plan = plan
        self.staff_phones = staff_phones
        self.users = {}

    def run(self):
        regions = self._regions()
        stores = self._stores(regions)
        skills = {name: skill_get_or_create(tenant=self.tenant, name=name) for name in self.plan.skills}
        tags = {name: tag_get_or_create(tenant=self.tenant, name=name) for name in self.plan.tags}
        engineers = [s for s in self.plan.staff if s.role == Role.ENGINEER]
        # Team leads are regional managers, so teams come after them and before the engineers.
        for spec in self.plan.staff:
            if spec.role != Role.ENGINEER:
                self._staff(spec, regions, stores, skills, {})
        teams = self._teams(regions)
        for spec in engineers:
            self._staff(spec, regions, stores, skills, teams)
        customers = self._customers(regions, stores, tags)
        self._opportunities(customers)

    def _regions(self):
        existing = {region.code: region for region in Region.objects.all()}
        for spec in self.plan.regions:
            if spec.code not in existing:
                existing[spec.code] = region_create(
                    tenant=self.tenant, name=spec.name, code=spec.code, settlement_class=spec.settlement_class,
                    parent=existing[spec.parent] if spec.parent else None,
                )
        return existing

    def _stores(self, regions):
        existing = {store.code: store for store in Store.objects.all()}
        for spec in self.plan.stores:
            if spec.code not in existing:
                existing[spec.code] = store_create(
                    tenant=self.tenant, region=regions[spec.region], name=spec.name, code=spec.code, city=spec.city,
                    address=spec.address, phone=spec.phone, latitude=Decimal(spec.latitude),
                    longitude=Decimal(spec.longitude),
                )
        return existing

    def _staff(self, spec, regions, stores, skills, teams):
        User = get_user_model()
        user = User.objects.filter(username=spec.username).first()
        if user is None:
            profile = staff_create(
                tenant=self.tenant, username=spec.username, password=PASSWORD, display_name=spec.display_name,
                role=spec.role, phone=self.staff_phones[spec.username],
                email=f"{spec.wecom_userid.lower()}@{self.plan.slug}.example.com",
                home_store=stores[spec.home_store] if spec.home_store else None,
                skills=[skills[name] for name in spec.skills], teams=[teams[name] for name in spec.teams],
                wecom_userid=spec.wecom_userid, max_open_tickets=spec.max_open_tickets, on_duty=spec.on_duty,
            )
            user = profile.user
            if spec.region:
                region_grant(user=user, region=regions[spec.region])
            for code in spec.extra_stores:
                store_grant(user=user, store=stores[code])
        self.users[spec.username] = user

    def _teams(self, regions):
        existing = {team.name: team for team in Team.objects.all()}
        for spec in self.plan.teams:
            if spec.name not in existing:
                existing[spec.name] = team_create(
                    tenant=self.tenant, name=spec.name, region=regions[spec.region] if spec.region else None,
                    lead=self.users.get(spec.lead),
                )
        return existing

    def _customers(self, regions, stores, tags):
        existing = {customer.phone: customer for customer in Customer.objects.all()}
        store_region = {spec.code: spec.region for spec in self.plan.stores}
        for spec in self.plan.customers:
            phone = phone_normalize(spec.phone)
            if phone in existing:
                continue
            store = stores[spec.store]
            existing[phone] = customer_create(
                tenant=self.tenant, name=spec.name, phone=phone, tags=[tags[name] for name in spec.tags],
                email=spec.email, wecom_external_userid=spec.wecom_external_userid, wechat_openid=spec.wechat_openid,
                tier=spec.tier, region=regions[store_region[spec.store]], store=store, owner=self.users[spec.owner],
                address=spec.address, note=spec.note,
            )
        return existing

    def _opportunities(self, customers):
        existing = set(Opportunity.objects.values_list("customer__phone", "title"))
        for spec in self.plan.opportunities:
            if (spec.customer_phone, spec.title) in existing:
                continue
            opportunity_create(
                tenant=self.tenant, customer=customers[spec.customer_phone], title=spec.title, amount=spec.amount,
                stage=spec.stage, owner=self.users[spec.owner], signed_date=spec.signed_date,
            )
            existing.add((spec.customer_phone, spec.title))


def _width(text):
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text, width):
    return text + " " * (width - _width(text))


def _table(header, rows):
    widths = [max(_width(row[i]) for row in [header, *rows]) for i in range(len(header))]
    rule = "  ".join("-" * w for w in widths)
    lines = ["  ".join(_pad(cell, w) for cell, w in zip(header, widths, strict=True)).rstrip(), rule]
    lines += ["  ".join(_pad(cell, w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Seed two demo tenants (味道江南餐饮集团, 美嘉家电售后) and a root superuser; safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--quiet", action="store_true", help="do not print the table of demo logins")

    def handle(self, *args, **options):
        # Timeline and notification texts are written in the product's default language.
        with translation.override(settings.LANGUAGE_CODE):
            return self._handle(*args, **options)

    def _handle(self, *args, **options):
        started = time.monotonic()
        verbose = options["verbosity"] > 0
        plans, staff_phones = build_plans()
        for plan in plans:
            with transaction.atomic():
                tenant = Tenant.objects.filter(slug=plan.slug).first()
                if tenant is None:
                    tenant = tenant_create(name=plan.name, slug=plan.slug)
                with tenant_scope(tenant):
                    before = _counts()
                    TenantSeeder(tenant, plan, staff_phones).run()
                    demo_tickets_seed(tenant=tenant)
                    fieldservice_demo_seed(tenant=tenant)
                    dispatch_demo_seed(tenant=tenant)
                    parts_demo_seed(tenant=tenant)
                    sla_demo_seed(tenant=tenant)
                    settlement_seed(tenant=tenant)
                    automation_seed(tenant=tenant)
                    dashboard_history_seed(tenant=tenant)
                    parts_history_seed(tenant=tenant)
                    # The dashboard reads daily roll-ups: compute them now (the first beat run
                    # would, minutes later) so its charts are filled on the first visit.
                    rollup_refresh(tenant=tenant)
                    after = _counts()
            if verbose:
                summary = "，".join(f"{label} {after[label]}（新建 {after[label] - before[label]}）" for label in after)
                self.stdout.write(f"{tenant.name} [{tenant.slug}]：{summary}")

        User = get_user_model()
        if not User.objects.filter(username=SUPERUSER).exists():
            User.objects.create_superuser(SUPERUSER, f"{SUPERUSER}@example.com", PASSWORD)
        if verbose:
            self.stdout.write(f"完成，用时 {time.monotonic() - started:.1f} 秒。")
        if verbose and not options["quiet"]:
            self._print_logins(plans)

    @staticmethod
    def public_forms():
        """(tenant slug, template slug, tenant name, template name) of every published public form."""
        rows = []
        for tenant in Tenant.objects.filter(is_active=True).order_by("pk"):
            with tenant_scope(tenant):
                rows += [(tenant.slug, t.slug, tenant.name, t.name)
                         for t in template_list(active_only=True) if t.is_public and t.current_version_id]
        return rows

    def _print_logins(self, plans):
        names = {plan.slug: plan.name for plan in plans}
        rows = [[SUPERUSER, PASSWORD, "（全部租户）", "超级用户", "", "Django admin，无租户成员身份"]]
        for plan in plans:
            regions = {region.code: region.name for region in plan.regions}
            stores = {store.code: store.name for store in plan.stores}
            for spec in plan.staff:
                if spec.region:
                    scope = regions[spec.region]
                elif spec.home_store:
                    more = f" 等 {1 + len(spec.extra_stores)} 店" if spec.extra_stores else ""
                    scope = stores[spec.home_store] + more
                else:
                    scope = "全租户"
                rows.append([spec.username, PASSWORD, names[plan.slug], ROLE_LABELS[spec.role], spec.display_name,
                             scope])
        header = ["用户名", "密码", "租户", "角色", "姓名", "范围"]
        self.stdout.write("\n演示账号 / Demo logins\n" + _table(header, rows) + "\n")
        url = settings.SITE_URL
        self.stdout.write(self.style.SUCCESS(f"登录地址 / Sign in at: {url}/login/"))
        self.stdout.write("\n客户提交入口 / Public forms\n")
        for tenant_slug, template_slug, tenant_name, template_name in self.public_forms():
            self.stdout.write(f"  {tenant_name} · {template_name}: {url}/s/{tenant_slug}/{template_slug}/")
