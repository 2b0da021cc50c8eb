__version__ = "0.1.0"

import warnings
# fastai 2.8.7 decorates functions in fastai.layers with torch.jit.script when it is imported, and torch >= 2.10 warns
# about that on every import: a FutureWarning about fastai's code, not the user's, at the top of every salt_nb command.
warnings.filterwarnings('ignore', message=r'`torch\.jit\.script` is deprecated', category=FutureWarning)
