"""The starter set of the knowledge base: a few common procedures, as EXAMPLES.

Written for the example configuration so a new installation has something for
its agents to search and its admins to copy.  They follow the national laws as
commonly described (the Civil Status Law 2014, the Residence Law 2020, the Land
Law 2024) but are NOT checked against this city's current rules, fees or
offices: every article is loaded with ``example = true`` (shown as
"Ví dụ / Example" on every page), says so in its summary, and should be
rewritten or archived by the city's admins.  ``hotline kb load-examples``
loads them; loading again adds only the missing ones.

``agency_code`` names the responsible agency in the directory when one with
that code exists (otherwise the article has none).
"""

from __future__ import annotations

from typing import Any

NOTE = "VÍ DỤ: nội dung mẫu, cần kiểm tra lại theo quy định hiện hành của thành phố."

ARTICLES: list[dict[str, Any]] = [
    {
        "code": "vi-du-dang-ky-khai-sinh",
        "title": "Đăng ký khai sinh",
        "summary": f"{NOTE} Đăng ký khai sinh cho trẻ em tại UBND phường, xã nơi cư trú "
        "của cha hoặc mẹ, trong 60 ngày kể từ ngày sinh.",
        "steps": "1. Chuẩn bị tờ khai đăng ký khai sinh và giấy chứng sinh.\n"
        "2. Nộp hồ sơ tại bộ phận một cửa của UBND phường, xã nơi cư trú của cha hoặc mẹ, "
        "hoặc nộp trực tuyến trên Cổng dịch vụ công.\n"
        "3. Công chức tư pháp - hộ tịch kiểm tra hồ sơ, ghi vào Sổ hộ tịch.\n"
        "4. Nhận Giấy khai sinh (bản chính) và bản sao nếu có yêu cầu.",
        "documents": "Tờ khai đăng ký khai sinh (theo mẫu); Giấy chứng sinh (hoặc văn bản "
        "của người làm chứng); giấy tờ tùy thân của người đi đăng ký; giấy chứng nhận kết "
        "hôn của cha mẹ (nếu có).",
        "fees": "Miễn lệ phí khi đăng ký đúng hạn; bản sao trích lục theo mức thu của thành phố.",
        "processing_time": "Ngay trong ngày làm việc (nộp sau 15 giờ thì trả trong ngày "
        "làm việc tiếp theo).",
        "agency_code": "ubnd-phuong",
        "templates": "Tờ khai đăng ký khai sinh | https://dichvucong.gov.vn/",
        "keywords": "giấy khai sinh, làm khai sinh cho con, khai sinh cho bé, hộ tịch, "
        "trẻ mới sinh",
    },
    {
        "code": "vi-du-dang-ky-tam-tru",
        "title": "Đăng ký tạm trú",
        "summary": f"{NOTE} Người đến sinh sống ngoài nơi thường trú từ 30 ngày trở lên "
        "phải đăng ký tạm trú tại Công an phường, xã.",
        "steps": "1. Chuẩn bị Tờ khai thay đổi thông tin cư trú (CT01).\n"
        "2. Nộp tại Công an phường, xã nơi tạm trú hoặc trực tuyến trên Cổng dịch vụ công "
        "quốc gia / ứng dụng VNeID.\n"
        "3. Cơ quan đăng ký cư trú kiểm tra, cập nhật vào Cơ sở dữ liệu về cư trú.\n"
        "4. Nhận thông báo kết quả.",
        "documents": "Tờ khai CT01 (có ý kiến đồng ý của chủ hộ, chủ nhà); giấy tờ chứng "
        "minh chỗ ở hợp pháp (hợp đồng thuê nhà, giấy tờ nhà).",
        "fees": "Theo mức lệ phí của HĐND thành phố (nộp trực tuyến thường thấp hơn).",
        "processing_time": "03 ngày làm việc.",
        "agency_code": "cong-an-phuong",
        "templates": "Tờ khai thay đổi thông tin cư trú (CT01) | https://dichvucong.gov.vn/",
        "keywords": "tạm trú, đăng ký tạm trú, thuê trọ, nhà trọ, CT01, cư trú",
    },
    {
        "code": "vi-du-dang-ky-thuong-tru",
        "title": "Đăng ký thường trú",
        "summary": f"{NOTE} Đăng ký thường trú (nhập hộ khẩu) tại chỗ ở hợp pháp, "
        "tại Công an phường, xã.",
        "steps": "1. Chuẩn bị Tờ khai CT01 và giấy tờ chứng minh chỗ ở hợp pháp.\n"
        "2. Nộp tại Công an phường, xã hoặc trực tuyến.\n"
        "3. Nhận thông báo kết quả cập nhật thông tin thường trú.",
        "documents": "Tờ khai CT01; giấy tờ chứng minh chỗ ở hợp pháp; giấy tờ chứng minh "
        "quan hệ nhân thân khi nhập vào hộ của người thân.",
        "fees": "Theo mức lệ phí của HĐND thành phố.",
        "processing_time": "07 ngày làm việc.",
        "agency_code": "cong-an-phuong",
        "templates": "Tờ khai CT01 | https://dichvucong.gov.vn/",
        "keywords": "thường trú, hộ khẩu, nhập hộ khẩu, chuyển hộ khẩu, cư trú",
    },
    {
        "code": "vi-du-cap-giay-chung-nhan-quyen-su-dung-dat",
        "title": "Cấp Giấy chứng nhận quyền sử dụng đất lần đầu",
        "summary": f"{NOTE} Cấp Giấy chứng nhận quyền sử dụng đất, quyền sở hữu tài sản "
        "gắn liền với đất (sổ đỏ, sổ hồng) lần đầu cho hộ gia đình, cá nhân.",
        "steps": "1. Nộp hồ sơ tại bộ phận một cửa cấp huyện hoặc Chi nhánh Văn phòng đăng ký "
        "đất đai.\n"
        "2. UBND cấp xã xác nhận hiện trạng, nguồn gốc sử dụng đất, niêm yết công khai.\n"
        "3. Văn phòng đăng ký đất đai kiểm tra, trích đo địa chính nếu cần, chuyển thông tin "
        "để xác định nghĩa vụ tài chính.\n"
        "4. Người dân nộp nghĩa vụ tài chính (nếu có).\n"
        "5. Nhận Giấy chứng nhận.",
        "documents": "Đơn đăng ký đất đai, tài sản gắn liền với đất (Mẫu 04/ĐK); giấy tờ về "
        "quyền sử dụng đất (nếu có); giấy tờ về tài sản gắn liền với đất; chứng từ thực hiện "
        "nghĩa vụ tài chính, giấy tờ miễn giảm (nếu có).",
        "fees": "Lệ phí cấp giấy chứng nhận và các nghĩa vụ tài chính (tiền sử dụng đất, "
        "lệ phí trước bạ) theo quy định.",
        "processing_time": "Không quá 20 ngày làm việc (không kể thời gian niêm yết, "
        "thực hiện nghĩa vụ tài chính).",
        "agency_code": "vp-dang-ky-dat-dai",
        "templates": "Đơn đăng ký đất đai (Mẫu 04/ĐK) | https://dichvucong.gov.vn/",
        "keywords": "sổ đỏ, sổ hồng, giấy chứng nhận quyền sử dụng đất, đất đai, nhà đất, cấp sổ",
    },
    {
        "code": "vi-du-dang-ky-ket-hon",
        "title": "Đăng ký kết hôn",
        "summary": f"{NOTE} Hai bên nam, nữ cùng có mặt tại UBND phường, xã nơi cư trú "
        "của một trong hai người.",
        "steps": "1. Nộp tờ khai đăng ký kết hôn và giấy xác nhận tình trạng hôn nhân "
        "(nếu đăng ký ở nơi khác nơi cư trú).\n"
        "2. Công chức tư pháp - hộ tịch kiểm tra điều kiện kết hôn.\n"
        "3. Hai bên cùng có mặt, ký vào Sổ hộ tịch và Giấy chứng nhận kết hôn.",
        "documents": "Tờ khai đăng ký kết hôn; giấy tờ tùy thân của hai bên; giấy xác nhận "
        "tình trạng hôn nhân (khi cần).",
        "fees": "Miễn lệ phí khi đăng ký trong nước giữa công dân Việt Nam.",
        "processing_time": "Ngay trong ngày làm việc; cần xác minh thì không quá 05 ngày làm việc.",
        "agency_code": "ubnd-phuong",
        "templates": "Tờ khai đăng ký kết hôn | https://dichvucong.gov.vn/",
        "keywords": "kết hôn, đăng ký kết hôn, giấy đăng ký kết hôn, cưới, hộ tịch",
    },
    {
        "code": "vi-du-dang-ky-khai-tu",
        "title": "Đăng ký khai tử",
        "summary": f"{NOTE} Người thân đăng ký khai tử trong 15 ngày kể từ ngày người "
        "thân mất, tại UBND phường, xã nơi cư trú cuối cùng của người mất.",
        "steps": "1. Nộp tờ khai đăng ký khai tử và giấy báo tử.\n"
        "2. Công chức tư pháp - hộ tịch ghi vào Sổ hộ tịch.\n"
        "3. Nhận Trích lục khai tử.",
        "documents": "Tờ khai đăng ký khai tử; giấy báo tử hoặc giấy tờ thay giấy báo tử.",
        "fees": "Miễn lệ phí khi đăng ký đúng hạn.",
        "processing_time": "Ngay trong ngày làm việc.",
        "agency_code": "ubnd-phuong",
        "templates": "Tờ khai đăng ký khai tử | https://dichvucong.gov.vn/",
        "keywords": "khai tử, giấy chứng tử, người mất, báo tử, hộ tịch",
    },
    {
        "code": "vi-du-chung-thuc-ban-sao",
        "title": "Chứng thực bản sao từ bản chính",
        "summary": f"{NOTE} Chứng thực bản sao giấy tờ từ bản chính tại UBND phường, xã, "
        "Phòng Tư pháp hoặc tổ chức hành nghề công chứng.",
        "steps": "1. Mang bản chính và bản sao (hoặc để cơ quan chụp) đến nơi chứng thực.\n"
        "2. Người thực hiện đối chiếu bản sao với bản chính.\n"
        "3. Nhận bản sao đã chứng thực.",
        "documents": "Bản chính giấy tờ; bản sao cần chứng thực.",
        "fees": "2.000 đồng/trang; từ trang thứ ba trở lên 1.000 đồng/trang "
        "(tối đa 200.000 đồng/bản).",
        "processing_time": "Trong ngày (nộp sau 15 giờ thì trả trong ngày làm việc tiếp theo).",
        "agency_code": "ubnd-phuong",
        "templates": "",
        "keywords": "công chứng, sao y, chứng thực, bản sao, photo công chứng",
    },
    {
        "code": "vi-du-dang-ky-ho-kinh-doanh",
        "title": "Đăng ký thành lập hộ kinh doanh",
        "summary": f"{NOTE} Đăng ký hộ kinh doanh tại Phòng Tài chính - Kế hoạch cấp huyện "
        "(hoặc cơ quan đăng ký kinh doanh theo phân cấp của thành phố).",
        "steps": "1. Chuẩn bị giấy đề nghị đăng ký hộ kinh doanh.\n"
        "2. Nộp trực tiếp hoặc qua Cổng thông tin quốc gia về đăng ký doanh nghiệp.\n"
        "3. Nhận Giấy chứng nhận đăng ký hộ kinh doanh.",
        "documents": "Giấy đề nghị đăng ký hộ kinh doanh; giấy tờ tùy thân của chủ hộ; biên "
        "bản họp thành viên hộ gia đình (nếu các thành viên cùng đăng ký).",
        "fees": "Theo mức lệ phí của HĐND thành phố.",
        "processing_time": "03 ngày làm việc.",
        "agency_code": "phong-tai-chinh-ke-hoach",
        "templates": "Giấy đề nghị đăng ký hộ kinh doanh | https://dangkykinhdoanh.gov.vn/",
        "keywords": "hộ kinh doanh, giấy phép kinh doanh, mở cửa hàng, buôn bán, đăng ký "
        "kinh doanh",
    },
]
