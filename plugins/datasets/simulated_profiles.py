"""What the ``simulated`` cohort is calibrated to: MIMIC-III's size, prevalences and comorbidity profiles.

Figures marked "issue" are the targets of the benchmark's issue #3 (published MIMIC-III
statistics: 46,520 patients, 58,976 admissions, 651,047 diagnosis rows, 16 leading groups).
The other prevalences are rounded estimates of MIMIC-III patient prevalence, written down so
that the cohort has a realistic head; the long tail below them is a smooth curve.

A *profile* is a latent condition a patient carries for life (cardiac, renal, sepsis, …). It
multiplies the per-admission rate of its member codes by its *lift*, so codes of one profile
co-occur; an adult's frailty raises the chance of carrying every profile, so profiles co-occur
too. Neonates (about 17 % of patients) draw only from their own code family.
"""

from __future__ import annotations

# --------------------------------------------------------------------------- cohort (issue)
MIMIC3_PATIENTS = 46520
MIMIC3_CODES = 1071
MIMIC3_ADMISSIONS = 58976
MIMIC3_DIAGNOSIS_ROWS = 651047
MULTI_ADMISSION_SHARE = 0.16  # patients with more than one admission
NEONATAL_SHARE = 0.17
NEONATAL_MULTI_SHARE = 0.02  # neonates are rarely readmitted to the ICU
# Among patients with more than one admission, extra admissions beyond the second are
# geometric: mean admissions 1.27 = 1 + 0.16 · mean(extra), so mean(extra) = 1.6875.
EXTRA_ADMISSIONS_MEAN = (58976 / 46520 - 1) / MULTI_ADMISSION_SHARE

# --------------------------------------------------------------------------- prevalence
# Patient prevalence of the 16 leading groups (issue).
LEADING: dict[str, float] = {
    "401": 0.38, "414": 0.24, "427": 0.26, "428": 0.22, "584": 0.18, "272": 0.25,
    "250": 0.20, "518": 0.19, "599": 0.14, "530": 0.12, "285": 0.20, "244": 0.09,
    "486": 0.095, "496": 0.077, "995": 0.09, "038": 0.09,
}


def _table(text: str) -> dict[str, float]:
    """``"code:percent …"`` → {code: share}."""
    return {c: float(p) / 100 for c, p in (item.split(":") for item in text.split())}


# Rounded estimates of the next groups' patient prevalence (percent).
ESTIMATED: dict[str, float] = _table(
    """
    276:27 V45:17 V58:15 585:10 403:10 305:11 V15:10 E878:9 287:8 E849:8 780:8 998:8 785:8
    V10:7 424:7 997:7 410:6.5 311:6 458:6 507:5.5 412:5.5 300:5 E879:5 288:5 041:5 996:5
    707:4.5 493:4.5 511:4.5 571:4 286:4 263:4 348:4 278:4 440:4 303:4 425:4 275:3.5 V12:3.5
    070:3 293:3 799:3 790:3 789:3 443:3 433:3 438:3 345:3 296:3 416:3 600:3 V85:3 786:3
    787:2.5 434:2.5 331:2.5 852:2.5 198:2.5 578:2.5 008:2.5 682:2.5 112:2.5 491:2.5 274:2.5
    V49:2.5 733:2.5 715:2.5 362:2.5 V14:2.5 327:2 357:2 431:2 805:2 807:2 E888:2 291:2 304:2
    197:2 162:2 572:2 577:2 574:2 569:2 482:2 V46:2 413:2 429:2 441:2 V44:2 V43:2 784:2
    788:2 294:2 280:2 289:2 453:2 415:2 E934:1.5 342:1.5 432:1.5 850:1.5 820:1.5 E880:1.5
    196:1.5 338:1.5 456:1.5 567:1.5 560:1.5 562:1.5 519:1.5 397:1.5 396:1.5 V42:1.5 588:1.5
    596:1.5 781:1.5 332:1.5 290:1.5 253:1.5 255:1.5 281:1.5 284:1.5 V64:1.5 V66:1.5 V17:1.5
    V13:1.5 V09:1.5 853:1 854:1 808:1 860:1 861:1 864:1 873:1 959:1 E885:1 295:1 965:1
    969:1 E939:1 E935:1 E942:1 V62:1 185:1 573:1 575:1 535:1 593:1 791:1 346:1 356:1 714:1
    242:1 268:1 273:1 277:1 V87:1 V88:1 V16:1 V02:1 442:1 E884:0.8 E812:0.8 E950:0.8
    174:0.8 202:0.8 191:0.8 155:0.8 531:0.8 537:0.8 481:0.8 583:0.8 710:0.8 283:0.8
    E881:0.7 153:0.7 199:0.7 532:0.6 205:0.6 E819:0.5 977:0.5 204:0.3 203:0.5 157:0.5
    282:0.5 269:0.5 402:0.5 394:0.5 E980:0.3
    """
)

# Neonatal family: codes only neonates get (share of all patients).
NEONATAL: dict[str, float] = _table(
    """
    V30:14.7 V31:2.0 V32:0.2 V33:0.1 V34:0.05 V05:12.5 V29:10 774:6.5 770:5.5 765:4.8 779:3
    769:2 776:1.2 766:1 775:1 771:0.8 763:0.8 772:0.6 778:0.6 762:0.6 777:0.5 764:0.4
    773:0.3 768:0.3 760:0.2 761:0.2 767:0.2
    """
)
NEONATAL_FAMILY_PREFIXES = ("V30", "V31", "V32", "V33", "V34", "V35", "V36", "V37", "V39", "V05", "V29", "76", "77")
NEONATAL_LEAK = 0.003  # neonates' rate of adult codes, relative to adults': rare overlap

# Long tail below the listed groups: prevalence falls from TAIL_START to TAIL_END over the
# real ICD-9 groups not listed above, as exp(log-interpolation ** TAIL_SHAPE).
TAIL_START = 0.008
TAIL_END = 5e-6
TAIL_SHAPE = 1.8

# --------------------------------------------------------------------------- profiles
# name: (population, prevalence in that population at frailty 1, readmission factor, lifts)
PROFILES: dict[str, tuple[str, float, float, str]] = {
    "cardiac": ("adult", 0.30, 1.5,
                "414:12 427:8 428:10 424:8 410:10 412:8 V45:6 413:6 425:8 416:5 429:5 440:4 "
                "443:4 785:3 402:4 396:6 397:6 V58:3 V12:3 401:2 996:3 411:6 E878:2"),
    "metabolic": ("adult", 0.35, 1.2,
                  "250:10 272:10 401:4 278:6 244:3 357:8 362:5 V58:3 403:3 585:3 274:3 327:4 "
                  "V85:4 414:2 536:3 707:3"),
    "renal": ("adult", 0.14, 1.8,
              "584:6 585:15 403:15 276:4 285:4 588:10 593:4 V45:6 996:4 583:8 791:4 274:4 V42:6 "
              "586:6 275:5 287:2 599:2"),
    "sepsis": ("adult", 0.12, 1.5,
               "038:20 995:20 785:10 584:4 518:4 276:3 286:5 287:4 041:8 112:5 599:4 682:5 "
               "486:3 570:6 008:4 790:4 458:4 288:4 263:3 707:3"),
    "respiratory": ("adult", 0.18, 1.4,
                    "518:8 486:6 496:12 491:12 493:8 507:8 511:6 799:5 786:4 482:8 481:8 519:6 "
                    "V46:10 466:6 415:4 492:8 416:4"),
    "liver": ("adult", 0.05, 1.8,
              "571:30 572:30 456:30 070:15 789:12 303:8 305:3 287:8 286:8 573:15 567:10 276:3 "
              "275:5 578:6 V42:4"),
    "oncology": ("adult", 0.10, 2.0,
                 "197:25 198:25 196:20 162:15 153:10 174:10 185:6 199:15 285:3 V10:10 338:10 "
                 "V58:3 288:8 780:3 188:10 189:10 204:10 205:12 202:10 203:10 172:10 191:10 "
                 "157:10 155:10 154:8 150:8 151:8 200:8 183:8 182:8 V66:8 V87:5 284:8 263:4"),
    "trauma": ("adult", 0.10, 1.0,
               "805:20 807:20 808:20 812:15 820:15 823:15 851:15 852:20 853:15 854:15 860:20 "
               "861:20 864:15 873:15 920:10 922:10 959:10 E812:20 E880:15 E881:10 E884:10 "
               "E885:10 E888:12 E819:10 E849:4 E968:8 305:3 303:3 802:15 801:10 850:12 806:10 "
               "813:10 821:10 824:10 865:10 862:10 958:8 E816:10 E813:8 E882:8 E966:8"),
    "neuro": ("adult", 0.09, 1.3,
              "430:15 431:15 432:15 433:12 434:15 435:10 436:10 437:10 342:12 348:8 345:8 780:3 "
              "784:8 331:6 438:8 787:4 997:3 349:6 344:8 225:8 294:4 290:4 332:5 340:6 320:6"),
    "gastrointestinal": ("adult", 0.08, 1.3,
                         "530:4 531:15 532:15 535:10 537:10 560:12 562:12 569:12 578:15 574:12 "
                         "575:12 577:12 576:10 285:3 008:4 557:10 564:8 568:8 553:8 211:6 455:8 "
                         "787:4 789:6"),
    "surgical": ("adult", 0.14, 1.0,
                 "998:8 997:8 996:6 E878:10 E879:10 E870:6 E849:4 458:5 424:3 441:8 442:8 444:6 "
                 "447:6 V43:6 E876:5 E871:4 682:2"),
    "substance": ("adult", 0.10, 1.3,
                  "305:12 303:20 304:15 291:20 311:6 296:10 300:6 295:12 965:12 969:12 977:10 "
                  "E950:15 E980:10 E939:8 E935:6 V62:8 292:12 301:8 309:6 070:4 298:6 293:4 "
                  "E854:8 E858:8 E853:6 E855:6 980:10 967:8 970:8"),
    "hematology": ("adult", 0.08, 1.2,
                   "286:6 287:8 289:8 280:8 281:8 284:6 288:6 453:10 415:10 V58:6 V12:4 282:8 "
                   "283:8 E934:10 E942:5"),
    # Neonatal profiles: the family's background (all neonates) is in NEONATAL_BACKGROUND.
    "singleton": ("neonate", 1.0, 1.0, "V30:1"),
    "twin": ("neonate", 0.12, 1.0, "V31:1 V32:0.1 V33:0.05 V34:0.03"),
    "preterm": ("neonate", 0.30, 2.0,
                "765:10 770:8 769:10 779:4 776:6 774:2 747:5 362:4 772:5 777:5 764:3 V29:0.5"),
}
# Exclusive neonatal birth types: "singleton" is carried exactly by the neonates who are not twins.
SINGLETON, TWIN = "singleton", "twin"
PRETERM_IF_TWIN = 0.6
# Weight of each neonatal-family code in the neonates' own background (codes absent here
# come only from profiles).
NEONATAL_BACKGROUND = _table(
    "V05:1 V29:1 774:1 779:0.3 770:0.5 766:0.3 763:0.2 762:0.2 775:0.2 771:0.2 778:0.2 "
    "772:0.1 773:0.2 777:0.1 760:0.1 761:0.1 767:0.1 768:0.1 765:0.05 769:0.05 776:0.05 764:0.1"
)

# An adult code that belongs to a profile gets this background weight (instead of 1), so most
# of its patients carry one of its profiles: comorbidity is what makes codes co-occur.
BACKGROUND_IF_PROFILED = 0.25

# Unlisted (tail) groups join 0–2 adult profiles at random, with lifts in this range.
TAIL_PROFILE_P = 0.5
TAIL_LIFT = (3.0, 15.0)

# --------------------------------------------------------------------------- rows
ADMISSION_SHAPE = 3  # gamma shape of an admission's coding intensity (spread of codes/admission)
FRAILTY_SHAPE = 2.0  # gamma shape (mean 1) of an adult's frailty, which raises every profile
FRAILTY_LEVELS = 8  # frailty is discretised to this many equally likely levels
INTENSITY_FRAILTY_POWER = 1.0  # a frail adult is coded with more of everything: rate × z^power
READMISSION_FRAILTY_POWER = 1.0  # and readmitted more often: P(>1 admission) × z^power
# A present group has a second diagnosis row (another full code of the group) in the same
# admission with this chance, scaled by 1 − 1/leaves (the MIMIC-III demo has 1.08 rows per
# admission-group pair).
SECOND_ROW = 0.12
MAX_ROWS_PER_ADMISSION = 39  # MIMIC-III's largest SEQ_NUM
