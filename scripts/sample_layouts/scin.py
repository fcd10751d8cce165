"""SCIN sample (bucket mirror: dataset/scin_cases.csv, dataset/scin_labels.csv, dataset/images/)."""

from __future__ import annotations

from pathlib import Path

from .writers import LF, write_csv, write_png

SCIN_CASES_HEADER = [
    "case_id",
    "source",
    "release",
    "year",
    "age_group",
    "sex_at_birth",
    "fitzpatrick_skin_type",
    "race_ethnicity_american_indian_or_alaska_native",
    "race_ethnicity_asian",
    "race_ethnicity_black_or_african_american",
    "race_ethnicity_hispanic_latino_or_spanish_origin",
    "race_ethnicity_middle_eastern_or_north_african",
    "race_ethnicity_native_hawaiian_or_pacific_islander",
    "race_ethnicity_white",
    "race_ethnicity_other_race",
    "race_ethnicity_prefer_not_to_answer",
    "textures_raised_or_bumpy",
    "textures_flat",
    "textures_rough_or_flaky",
    "textures_fluid_filled",
    "body_parts_head_or_neck",
    "body_parts_arm",
    "body_parts_palm",
    "body_parts_back_of_hand",
    "body_parts_torso_front",
    "body_parts_torso_back",
    "body_parts_genitalia_or_groin",
    "body_parts_buttocks",
    "body_parts_leg",
    "body_parts_foot_top_or_side",
    "body_parts_foot_sole",
    "body_parts_other",
    "condition_symptoms_bothersome_appearance",
    "condition_symptoms_bleeding",
    "condition_symptoms_increasing_size",
    "condition_symptoms_darkening",
    "condition_symptoms_itching",
    "condition_symptoms_burning",
    "condition_symptoms_pain",
    "condition_symptoms_no_relevant_experience",
    "other_symptoms_fever",
    "other_symptoms_chills",
    "other_symptoms_fatigue",
    "other_symptoms_joint_pain",
    "other_symptoms_mouth_sores",
    "other_symptoms_shortness_of_breath",
    "other_symptoms_no_relevant_symptoms",
    "related_category",
    "condition_duration",
    "image_1_path",
    "image_2_path",
    "image_3_path",
    "image_1_shot_type",
    "image_2_shot_type",
    "image_3_shot_type",
    "combined_race",
    "race_ethnicity_two_or_more_after_mitigation",
]

SCIN_LABELS_HEADER = [
    "case_id",
    "dermatologist_gradable_for_skin_condition_1",
    "dermatologist_gradable_for_skin_condition_2",
    "dermatologist_gradable_for_skin_condition_3",
    "dermatologist_skin_condition_on_label_name",
    "dermatologist_skin_condition_confidence",
    "weighted_skin_condition_label",
    "dermatologist_gradable_for_fitzpatrick_skin_type_1",
    "dermatologist_gradable_for_fitzpatrick_skin_type_2",
    "dermatologist_gradable_for_fitzpatrick_skin_type_3",
    "dermatologist_fitzpatrick_skin_type_label_1",
    "dermatologist_fitzpatrick_skin_type_label_2",
    "dermatologist_fitzpatrick_skin_type_label_3",
    "gradable_for_monk_skin_tone_india",
    "gradable_for_monk_skin_tone_us",
    "monk_skin_tone_label_india",
    "monk_skin_tone_label_us",
]

_YES_DEFAULT = "DEFAULT_YES_IMAGE_QUALITY_SUFFICIENT"

# Each case: (case_id, [(image_id, shot_type), ...], case columns, label columns).
# case ids and image ids are signed int64 values that a float64 cannot hold exactly.
SCIN_CASES: list[tuple[str, list[tuple[str, str]], dict[str, str], dict[str, str]]] = [
    (
        "-7215903346218817253",
        [
            ("-3320918475517263041", "CLOSE_UP"),
            ("8814350276619083527", "AT_AN_ANGLE"),
            ("-905512736281904466", "AT_DISTANCE"),
        ],
        {
            "age_group": "AGE_30_TO_39",
            "sex_at_birth": "FEMALE",
            "fitzpatrick_skin_type": "FST3",
            "race_ethnicity_white": "YES",
            "textures_raised_or_bumpy": "YES",
            "textures_rough_or_flaky": "YES",
            "body_parts_arm": "YES",
            "body_parts_leg": "YES",
            "condition_symptoms_itching": "YES",
            "condition_symptoms_burning": "YES",
            "other_symptoms_no_relevant_symptoms": "YES",
            "related_category": "RASH",
            "condition_duration": "ONE_TO_FOUR_WEEKS",
            "combined_race": "WHITE",
        },
        {
            "dermatologist_gradable_for_skin_condition_1": _YES_DEFAULT,
            "dermatologist_gradable_for_skin_condition_2": _YES_DEFAULT,
            "dermatologist_skin_condition_on_label_name": (
                "['Eczema', 'Allergic Contact Dermatitis', 'Eczema']"
            ),
            "dermatologist_skin_condition_confidence": "[3, 2, 4]",
            "weighted_skin_condition_label": (
                "{'Eczema': 0.69, 'Allergic Contact Dermatitis': 0.31}"
            ),
            "dermatologist_gradable_for_fitzpatrick_skin_type_1": "YES",
            "dermatologist_gradable_for_fitzpatrick_skin_type_2": "YES",
            "dermatologist_fitzpatrick_skin_type_label_1": "FST3",
            "dermatologist_fitzpatrick_skin_type_label_2": "FST2",
            "gradable_for_monk_skin_tone_india": "True",
            "gradable_for_monk_skin_tone_us": "True",
            "monk_skin_tone_label_india": "3.0",
            "monk_skin_tone_label_us": "4.0",
        },
    ),
    (
        "-1048271655392011877",
        [("2290174488163509312", "CLOSE_UP"), ("-6159047722830165793", "AT_DISTANCE")],
        {
            "age_group": "AGE_UNKNOWN",
            "sex_at_birth": "OTHER_OR_UNSPECIFIED",
            "textures_flat": "YES",
            "body_parts_torso_front": "YES",
            "condition_symptoms_bothersome_appearance": "YES",
            "condition_duration": "UNKNOWN",
        },
        {
            "dermatologist_gradable_for_skin_condition_1": _YES_DEFAULT,
            "dermatologist_skin_condition_on_label_name": (
                "['Acute dermatitis, NOS', 'Insect Bite']"
            ),
            "dermatologist_skin_condition_confidence": "[4, 2]",
            "weighted_skin_condition_label": "{'Acute dermatitis, NOS': 0.67, 'Insect Bite': 0.33}",
            "dermatologist_gradable_for_fitzpatrick_skin_type_1": "YES",
            "dermatologist_fitzpatrick_skin_type_label_1": "FST4",
            "gradable_for_monk_skin_tone_india": "True",
            "gradable_for_monk_skin_tone_us": "True",
            "monk_skin_tone_label_india": "5.0",
            "monk_skin_tone_label_us": "6.0",
        },
    ),
    (
        "3857120945561726409",
        [("5541608392275118874", "AT_AN_ANGLE")],
        {
            "age_group": "AGE_60_TO_69",
            "sex_at_birth": "MALE",
            "fitzpatrick_skin_type": "NONE_IDENTIFIED",
            "race_ethnicity_black_or_african_american": "YES",
            "race_ethnicity_hispanic_latino_or_spanish_origin": "YES",
            "textures_raised_or_bumpy": "YES",
            "body_parts_head_or_neck": "YES",
            "body_parts_back_of_hand": "YES",
            "condition_symptoms_itching": "YES",
            "condition_symptoms_increasing_size": "YES",
            "other_symptoms_fatigue": "YES",
            "other_symptoms_joint_pain": "YES",
            "related_category": "RASH",
            "condition_duration": "MORE_THAN_ONE_YEAR",
            "combined_race": "TWO_OR_MORE_AFTER_MITIGATION",
            "race_ethnicity_two_or_more_after_mitigation": "YES",
        },
        {
            "dermatologist_gradable_for_skin_condition_1": _YES_DEFAULT,
            "dermatologist_gradable_for_skin_condition_2": _YES_DEFAULT,
            "dermatologist_gradable_for_skin_condition_3": (
                "YES_IMAGE_QUALITY_SUFFICIENT_NO_DISCERNIBLE_PATHOLOGY"
            ),
            "dermatologist_skin_condition_on_label_name": "['Psoriasis', 'Tinea', 'Psoriasis']",
            "dermatologist_skin_condition_confidence": "[5, 2, 3]",
            "weighted_skin_condition_label": "{'Psoriasis': 0.75, 'Tinea': 0.25}",
            "dermatologist_gradable_for_fitzpatrick_skin_type_1": "YES",
            "dermatologist_gradable_for_fitzpatrick_skin_type_2": "NO",
            "dermatologist_gradable_for_fitzpatrick_skin_type_3": "YES",
            "dermatologist_fitzpatrick_skin_type_label_1": "FST5",
            "dermatologist_fitzpatrick_skin_type_label_3": "FST6",
            "gradable_for_monk_skin_tone_india": "True",
            "gradable_for_monk_skin_tone_us": "False",
            "monk_skin_tone_label_india": "8.0",
        },
    ),
    (
        "6620494017835542316",
        [("-4427716609934418250", "CLOSE_UP")],
        {
            "age_group": "AGE_18_TO_29",
            "sex_at_birth": "FEMALE",
            "fitzpatrick_skin_type": "FST1",
            "race_ethnicity_asian": "YES",
            "textures_fluid_filled": "YES",
            "body_parts_foot_sole": "YES",
            "condition_symptoms_pain": "YES",
            "other_symptoms_no_relevant_symptoms": "YES",
            "related_category": "OTHER_ISSUE_DESCRIPTION",
            "condition_duration": "LESS_THAN_ONE_WEEK",
            "combined_race": "ASIAN",
        },
        {
            "dermatologist_gradable_for_skin_condition_1": "NO_IMAGE_QUALITY_INSUFFICIENT",
            "weighted_skin_condition_label": "{}",
            "dermatologist_gradable_for_fitzpatrick_skin_type_1": "NO",
            "gradable_for_monk_skin_tone_india": "False",
            "gradable_for_monk_skin_tone_us": "False",
        },
    ),
]


def make_scin(root: Path) -> dict[str, int]:
    dataset = root / "dataset"
    cases, labels = [], []
    for case_id, images, case_cols, label_cols in sorted(SCIN_CASES, key=lambda c: c[0]):
        case = {"case_id": case_id, "source": "SCIN", "release": "1.0.0", "year": "2023"}
        case.update(case_cols)
        for n, (image_id, shot) in enumerate(images, start=1):
            case[f"image_{n}_path"] = f"dataset/images/{image_id}.png"
            case[f"image_{n}_shot_type"] = shot
            write_png(dataset / "images" / f"{image_id}.png")
        cases.append(case)
        labels.append({"case_id": case_id, **label_cols})
    return {
        "dataset/scin_cases.csv": write_csv(
            dataset / "scin_cases.csv", SCIN_CASES_HEADER, cases, LF
        ),
        "dataset/scin_labels.csv": write_csv(
            dataset / "scin_labels.csv", SCIN_LABELS_HEADER, labels, LF
        ),
    }
